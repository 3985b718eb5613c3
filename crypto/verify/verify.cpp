#include "haven/crypto/verify.hpp"

#include <sodium.h>

#include <stdexcept>

namespace haven::crypto {

void ensure_sodium() {
  // sodium_init is thread-safe and idempotent (returns 1 when already done).
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

bool verify_ed25519(byte_view public_key, byte_view message, byte_view signature) noexcept {
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES)
    return false;
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

std::array<std::uint8_t, 32> hash256(byte_view data) noexcept {
  std::array<std::uint8_t, 32> out{};
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

bool equal_constant_time(byte_view a, byte_view b) noexcept {
  if (a.size() != b.size()) return false;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void random_fill(std::span<std::uint8_t> out) noexcept { randombytes_buf(out.data(), out.size()); }

namespace {
void append(std::string& out, byte_view bytes) {
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
}  // namespace

std::string auth_message(byte_view server_id, byte_view nonce) {
  std::string m = "haven-auth-v1";
  append(m, server_id);
  append(m, nonce);
  return m;
}

std::string register_message(byte_view server_id, byte_view nonce, std::string_view invite_token) {
  std::string m = "haven-register-v1";
  append(m, server_id);
  append(m, nonce);
  m.append(invite_token);
  return m;
}

std::string identity_dh_message(byte_view dh_public_key) {
  std::string m = "haven-identity-dh-v1";
  append(m, dh_public_key);
  return m;
}

std::string prekey_message(std::uint8_t kind, std::uint32_t id, byte_view public_key) {
  std::string m = "haven-prekey-v1";
  m.push_back(static_cast<char>(kind));
  for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<char>((id >> shift) & 0xff));
  append(m, public_key);
  return m;
}

}  // namespace haven::crypto
