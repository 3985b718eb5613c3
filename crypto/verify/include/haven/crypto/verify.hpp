#pragma once
// Public-key-only primitives: everything the relay needs, nothing secret.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace haven::crypto {

inline constexpr std::size_t ed25519_public_key_size = 32;
inline constexpr std::size_t ed25519_signature_size = 64;

using byte_view = std::span<const std::uint8_t>;

// Initialises libsodium once; safe to call from any thread, any number of
// times. Throws std::runtime_error if libsodium cannot start (start-up only).
void ensure_sodium();

// True iff `signature` is a valid Ed25519 signature of `message` by
// `public_key`. Wrong sizes and small-order keys return false.
[[nodiscard]] bool verify_ed25519(byte_view public_key, byte_view message,
                                  byte_view signature) noexcept;

// BLAKE2b-256 of `data` (crypto_generichash), for storing verifiers such as
// hashed access keys and invite tokens instead of the secrets themselves.
[[nodiscard]] std::array<std::uint8_t, 32> hash256(byte_view data) noexcept;

// Constant-time equality; false when the sizes differ.
[[nodiscard]] bool equal_constant_time(byte_view a, byte_view b) noexcept;

// Fills `out` from the operating system's CSPRNG.
void random_fill(std::span<std::uint8_t> out) noexcept;

// ---- the exact bytes each signature covers (docs/PROTOCOL.md)

// "haven-auth-v1" || server_id || nonce, signed by a device key at log-in.
[[nodiscard]] std::string auth_message(byte_view server_id, byte_view nonce);
// "haven-register-v1" || server_id || nonce || invite token, signed by the
// new device's key.
[[nodiscard]] std::string register_message(byte_view server_id, byte_view nonce,
                                           std::string_view invite_token);
// "haven-identity-dh-v1" || X25519 identity key, signed by the identity key.
[[nodiscard]] std::string identity_dh_message(byte_view dh_public_key);
// "haven-prekey-v1" || kind (1 byte) || id (4 bytes big-endian) || X25519
// key, signed by the identity key. kind: 1 signed prekey, 3 last resort.
[[nodiscard]] std::string prekey_message(std::uint8_t kind, std::uint32_t id,
                                         byte_view public_key);

// Views a string's bytes (for verify_ed25519 and friends).
[[nodiscard]] inline byte_view bytes_of(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace haven::crypto
