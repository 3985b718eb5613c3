#pragma once
// Ed25519 signing keys for devices and identities.

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

using ed25519_public_key = std::array<std::uint8_t, ed25519_public_key_size>;
using ed25519_signature = std::array<std::uint8_t, ed25519_signature_size>;

class signing_key {
 public:
  // A fresh key pair; the seed is drawn from `random`.
  [[nodiscard]] static signing_key generate(const random_source& random);
  // The key pair for a 32-byte seed (RFC 8032 secret key).
  [[nodiscard]] static signing_key from_seed(std::span<const std::uint8_t, 32> seed);

  [[nodiscard]] const ed25519_public_key& public_key() const noexcept { return public_key_; }
  [[nodiscard]] ed25519_signature sign(std::span<const std::uint8_t> message) const noexcept;
  // The 32-byte seed, for storing the key in an encrypted vault.
  [[nodiscard]] secret_bytes seed() const;

 private:
  signing_key(secret_bytes secret, const ed25519_public_key& pub) noexcept
      : secret_(std::move(secret)), public_key_(pub) {}
  secret_bytes secret_;  // libsodium's 64-byte form: seed || public key
  ed25519_public_key public_key_{};
};

}  // namespace haven::crypto
