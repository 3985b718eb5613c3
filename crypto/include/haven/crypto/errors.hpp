#pragma once
// Errors of haven::crypto: one enum, registered as a std::error_code category
// ("haven.crypto"), so logs and wire errors can name it. Every function that
// handles untrusted input returns result<T> instead of throwing.

#include <expected>
#include <system_error>

namespace haven::crypto {

enum class errc {
  invalid_argument = 1,   // a field has the wrong size or is out of range
  malformed_message,      // bytes that do not parse as the expected message
  unsupported_version,    // a version byte or field this code does not know
  bad_signature,          // an Ed25519 signature does not verify
  weak_key,               // a low-order X25519 key: the DH output would be all zero
  decryption_failed,      // AEAD authentication failed: tampered, wrong key or wrong recipient
  duplicate_message,      // already decrypted, or its skipped key was dropped (replay)
  too_many_skipped,       // a message would skip more keys than the session allows
  no_sending_chain,       // a responder cannot send before it has received
  session_mismatch,       // a prekey message that belongs to another session
  missing_prekey,         // the prekey a message names was not supplied
  identity_mismatch,      // a sealed sender's certificate does not match the sealing key
  unknown_sender_chain,   // a group message from a sender chain we do not hold
  bad_padding,            // padding that sodium_unpad refuses
  too_large,              // plaintext over the padding limit
  weak_parameters,        // vault KDF limits outside the accepted range
  wrong_passphrase,       // the vault did not open: wrong passphrase (or a damaged vault)
  out_of_memory,          // crypto_pwhash could not allocate its memory
};

[[nodiscard]] const std::error_category& crypto_category() noexcept;
[[nodiscard]] std::error_code make_error_code(errc e) noexcept;

template <class T>
using result = std::expected<T, std::error_code>;

// Shorthand for `return std::unexpected(make_error_code(e));`.
[[nodiscard]] inline std::unexpected<std::error_code> fail(errc e) noexcept {
  return std::unexpected(make_error_code(e));
}

}  // namespace haven::crypto

template <>
struct std::is_error_code_enum<haven::crypto::errc> : std::true_type {};
