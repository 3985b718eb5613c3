#pragma once
// X25519 key pairs and Diffie-Hellman with the all-zero output refused.

#include <array>
#include <cstdint>
#include <span>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

inline constexpr std::size_t x25519_key_size = 32;
using x25519_public_key = std::array<std::uint8_t, x25519_key_size>;

class x25519_key_pair {
 public:
  // A fresh key pair: draws 32 bytes from `random` as the secret scalar.
  [[nodiscard]] static x25519_key_pair generate(const random_source& random);
  // The key pair of a 32-byte secret (clamped by X25519 itself).
  [[nodiscard]] static x25519_key_pair from_secret(std::span<const std::uint8_t, 32> secret);

  x25519_key_pair() = default;  // empty; only for containers and moved-from states
  x25519_key_pair(x25519_key_pair&&) noexcept = default;
  x25519_key_pair& operator=(x25519_key_pair&&) noexcept = default;

  [[nodiscard]] const x25519_public_key& public_key() const noexcept { return public_key_; }
  // The 32-byte secret, for serialising into an encrypted state or vault.
  [[nodiscard]] byte_view secret() const noexcept { return secret_.view(); }
  [[nodiscard]] bool empty() const noexcept { return secret_.empty(); }
  [[nodiscard]] x25519_key_pair clone() const;

 private:
  secret_bytes secret_;
  x25519_public_key public_key_{};
};

// X25519(our secret, their public). Errors: weak_key when the output is all
// zero (their key has low order: refused as X3DH and the ratchet require),
// invalid_argument when `their_public` is not 32 bytes.
[[nodiscard]] result<secret_array<32>> x25519(const x25519_key_pair& ours, byte_view their_public) noexcept;

// True when `public_key` is a low-order point (X25519 with any clamped scalar
// gives all zeros), so it can be refused before it is stored or used.
[[nodiscard]] bool is_low_order(byte_view public_key) noexcept;

}  // namespace haven::crypto
