#pragma once
// Every domain-separation label of the protocol (ASCII, no terminating NUL).
// docs/PROTOCOL.md lists where each is used; changing one is a protocol break.

#include <string_view>

namespace haven::crypto::labels {

inline constexpr std::string_view x3dh = "haven-x3dh-v1";                 // HKDF info, X3DH secret
inline constexpr std::string_view ratchet = "haven-ratchet-v1";           // HKDF info, KDF_RK
inline constexpr std::string_view message_keys = "haven-message-keys-v1"; // HKDF info, 1:1 message key -> AEAD key/nonce
inline constexpr std::string_view seal_ephemeral = "haven-seal-ephemeral-v1";
inline constexpr std::string_view seal_static = "haven-seal-static-v1";
inline constexpr std::string_view sender_certificate = "haven-sender-cert-v1";
inline constexpr std::string_view sender_key = "haven-sender-key-v1";     // group message signature prefix
inline constexpr std::string_view sender_key_message_keys = "haven-sender-key-message-keys-v1";
inline constexpr std::string_view safety_number = "haven-safety-number-v1";
inline constexpr std::string_view vault = "haven-vault-v1";               // vault AD prefix
inline constexpr std::string_view vault_auth = "haven-vault-auth-v1";     // HKDF info, k_auth
inline constexpr std::string_view vault_enc = "haven-vault-enc-v1";       // HKDF info, k_enc

}  // namespace haven::crypto::labels
