#pragma once
// HMAC-SHA256 and HKDF-SHA256 (RFC 5869), composed from libsodium's
// crypto_auth_hmacsha256_init/update/final (libsodium 1.0.18 has no HKDF).

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

inline constexpr std::size_t sha256_size = 32;
// RFC 5869: at most 255 blocks of output.
inline constexpr std::size_t hkdf_max_length = 255 * sha256_size;

// HMAC-SHA256 of the concatenation of `parts` under `key` (any length).
[[nodiscard]] secret_array<32> hmac_sha256(byte_view key, std::initializer_list<byte_view> parts) noexcept;

// HKDF-Extract: PRK = HMAC(salt, ikm). An empty salt means 32 zero bytes,
// as RFC 5869 says (HMAC pads a short key with zeros, so both are the same).
[[nodiscard]] secret_array<32> hkdf_extract(byte_view salt, byte_view ikm) noexcept;

// HKDF-Expand into `out`. Errors: invalid_argument when out.size() exceeds
// hkdf_max_length or the PRK is empty.
[[nodiscard]] result<void> hkdf_expand(byte_view prk, byte_view info, std::span<std::uint8_t> out) noexcept;

// Extract then expand into `out` (same errors as hkdf_expand).
[[nodiscard]] result<void> hkdf(byte_view salt, byte_view ikm, byte_view info,
                                std::span<std::uint8_t> out) noexcept;

// Extract then expand `length` bytes into secure memory.
[[nodiscard]] result<secret_bytes> hkdf(byte_view salt, byte_view ikm, byte_view info, std::size_t length);

}  // namespace haven::crypto
