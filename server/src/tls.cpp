#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "haven/crypto/tls_policy.hpp"

namespace haven::server {
namespace {

constexpr int k_expiry_warning_days = 14;

// OpenSSL's queued reasons, oldest first, as one line; clears the queue.
std::string openssl_reasons() {
  std::string out;
  while (const auto e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : "error " + std::to_string(e);
  }
  return out.empty() ? "no reason given" : out;
}

[[noreturn]] void fail(const std::string& what) {
  ERR_clear_error();
  throw std::runtime_error("TLS: " + what);
}

// OpenSSL's own messages for a missing file are obscure; say it plainly.
void require_readable(const std::filesystem::path& file, std::string_view what) {
  std::ifstream in(file);
  if (!in)
    fail(std::string(what) + " " + file.string() + " cannot be read: " + std::strerror(errno));
}

EVP_PKEY* read_key(const std::string& file) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_file(file.c_str(), "r"), BIO_free);
  if (!in) return nullptr;
  // No password callback: an encrypted key fails instead of prompting.
  return PEM_read_bio_PrivateKey(
      in.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
}

void warn_if_expiring(SSL_CTX* ctx, const std::filesystem::path& file) {
  const X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return;
  int days = 0, seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert)) != 1) return;
  if (days < 0 || (days == 0 && seconds <= 0))
    spdlog::warn("TLS certificate {} has expired: clients will refuse it", file.string());
  else if (days < k_expiry_warning_days)
    spdlog::warn("TLS certificate {} expires in {} days: renew it, then restart havend",
                 file.string(), days);
}

}  // namespace

bool tls_configured(const config& cfg) noexcept {
  return !cfg.tls_cert_file.empty() || !cfg.tls_key_file.empty();
}

boost::asio::ssl::context make_tls_context(const config& cfg) {
  if (cfg.tls_cert_file.empty() || cfg.tls_key_file.empty())
    fail("set both cert_file and key_file (--tls-cert and --tls-key), or neither");
  require_readable(cfg.tls_cert_file, "certificate file");
  require_readable(cfg.tls_key_file, "key file");

  boost::asio::ssl::context context(boost::asio::ssl::context::tls_server);
  SSL_CTX* ctx = context.native_handle();
  // Every connection negotiates TLS 1.3 with forward secrecy; nothing older
  // is offered, so there is nothing to downgrade to.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, crypto::tls13_ciphersuites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, crypto::tls_groups) != 1)
    fail("this OpenSSL cannot do TLS 1.3 with " + std::string(crypto::tls_groups) + ": " + openssl_reasons());
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  // No resumption: no ticket key or session cache in memory, no 0-RTT data.
  // Clients hold one long-lived connection, so a full handshake costs little.
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_max_early_data(ctx, 0);

  const auto cert = cfg.tls_cert_file.string();
  const auto key = cfg.tls_key_file.string();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    fail("certificate file " + cert + " is not a PEM certificate chain (" + openssl_reasons() +
         ")");
  // Read the key ourselves: OpenSSL's loader reports a mismatch as a load
  // failure, and an operator needs to know which of the two it was.
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(read_key(key), EVP_PKEY_free);
  if (!pkey)
    fail("key file " + key + " is not an unencrypted PEM private key (" + openssl_reasons() + ")");
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), pkey.get()) != 1)
    fail("key file " + key + " does not match the certificate in " + cert);
  if (SSL_CTX_use_PrivateKey(ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    fail("key file " + key + " cannot be used with " + cert + " (" + openssl_reasons() + ")");
  warn_if_expiring(ctx, cfg.tls_cert_file);
  return context;
}

}  // namespace haven::server
