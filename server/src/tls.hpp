#pragma once
// havend's TLS (OpenSSL through Asio): TLS 1.3 only, three AEAD suites,
// X25519 and P-256, no compression, no session tickets or cache.

#include <boost/asio/ssl/context.hpp>

#include "haven/server/config.hpp"

namespace haven::server {

// True when cfg asks for TLS (either [tls] file set).
[[nodiscard]] bool tls_configured(const config& cfg) noexcept;

// The server context for cfg.tls_cert_file and cfg.tls_key_file. Warns
// (log) when the certificate has expired or expires within 14 days.
// Throws std::runtime_error naming the file and the reason (start-up
// only): one of the two files unset, unreadable, not PEM, an encrypted
// key, or a key that does not match the certificate.
[[nodiscard]] boost::asio::ssl::context make_tls_context(const config& cfg);

}  // namespace haven::server
