#pragma once
// XChaCha20-Poly1305 (IETF construction, draft-irtf-cfrg-xchacha):
// ciphertext = encrypted plaintext || 16-byte tag.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

inline constexpr std::size_t aead_key_size = 32;
inline constexpr std::size_t aead_nonce_size = 24;
inline constexpr std::size_t aead_tag_size = 16;

// Encrypts `plaintext` with `ad` bound. Preconditions: key is 32 bytes and
// nonce 24 bytes (violations throw std::invalid_argument: a programming
// error, never an input error). A nonce must never repeat under one key.
[[nodiscard]] std::vector<std::uint8_t> aead_seal(byte_view key, byte_view nonce, byte_view ad,
                                                  byte_view plaintext);

// Decrypts and authenticates. Errors: decryption_failed (tampered bytes,
// wrong key, nonce or ad), malformed_message (shorter than a tag),
// invalid_argument (key or nonce of the wrong size).
[[nodiscard]] result<std::vector<std::uint8_t>> aead_open(byte_view key, byte_view nonce, byte_view ad,
                                                          byte_view ciphertext);

}  // namespace haven::crypto
