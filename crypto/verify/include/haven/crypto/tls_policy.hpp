#pragma once
// The one TLS policy havend and the clients both apply (OpenSSL names):
// TLS 1.3 only, these AEAD suites, these key-exchange groups.

namespace haven::crypto {

inline constexpr const char* tls13_ciphersuites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
inline constexpr const char* tls_groups = "X25519:P-256";

}  // namespace haven::crypto
