#pragma once
// The symmetric chain shared by the Double Ratchet and sender keys
// (docs/PROTOCOL.md): one step of a chain key, and the AEAD key and nonce
// of one message key.

#include <algorithm>
#include <array>
#include <string_view>

#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/secret_bytes.hpp"

namespace haven::crypto::detail {

struct chain_step_keys {
  secret_array<32> message_key;
  secret_array<32> next_chain;
};

// Message key = HMAC(CK, 0x01); next chain key = HMAC(CK, 0x02).
inline chain_step_keys chain_step(const secret_array<32>& ck) {
  static constexpr std::uint8_t one[1] = {0x01};
  static constexpr std::uint8_t two[1] = {0x02};
  return {hmac_sha256(ck.view(), {byte_view{one}}), hmac_sha256(ck.view(), {byte_view{two}})};
}

struct aead_params {
  secret_array<32> key;
  std::array<std::uint8_t, 24> nonce{};
};

// HKDF(salt = none, ikm = message key, info) -> 32-byte key || 24-byte
// nonce. Each message key is used once, so a derived nonce never repeats
// under its key.
inline aead_params message_aead(const secret_array<32>& mk, std::string_view info) {
  secret_array<56> okm;
  (void)hkdf({}, mk.view(), ascii(info), okm.mutable_view());
  aead_params p;
  std::copy_n(okm.data(), 32, p.key.data());
  std::copy_n(okm.data() + 32, 24, p.nonce.data());
  return p;
}

}  // namespace haven::crypto::detail
