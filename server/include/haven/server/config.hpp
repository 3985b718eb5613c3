#pragma once
// havend's settings: built-in defaults, then the TOML file, then flags.
// deploy/havend.toml documents every key.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace haven::server {

struct rate {
  double per_second = 0;  // sustained rate
  double burst = 0;       // bucket size
};

struct config {
  // [server]
  std::string listen = "127.0.0.1";
  std::uint16_t port = 8080;
  std::filesystem::path data_dir = ".haven-data";
  std::filesystem::path web_root;  // static files served at /, empty = none
  unsigned threads = 1;            // I/O threads; the store has its own writer
  // [tls]: with both set, the one port serves HTTPS and wss:// (TLS 1.3
  // only); with neither, plain HTTP and ws:// (loopback or behind a proxy).
  std::filesystem::path tls_cert_file;  // PEM: the certificate, then its chain
  std::filesystem::path tls_key_file;   // PEM: its private key, unencrypted
  // [limits]
  std::size_t max_frame_bytes = 256 * 1024;
  std::size_t outbound_buffer_bytes = 2 * 1024 * 1024;
  std::chrono::seconds handshake_timeout{10};  // TCP accept to logged in
  std::chrono::seconds idle_timeout{60};       // keep-alive pings at half this
  std::size_t delivery_window = 128;           // pushed but unacked envelopes
  std::size_t max_pending_requests = 64;       // per connection, then reading pauses
  rate connections_per_address{20, 60};
  rate logins_per_address{2, 30};
  rate sends_per_mailbox{200, 1000};
  rate prekey_fetches_per_mailbox{1, 20};
  std::uint32_t vault_max_failures = 10;  // wrong passphrases before a vault is destroyed
  // [store]
  std::chrono::hours envelope_ttl{24 * 30};
  std::chrono::seconds expiry_interval{300};
  std::size_t max_queue_per_device = 10'000;
  // [log]
  std::string log_level = "info";
  bool log_addresses = false;  // client IP addresses in logs; off by default
};

// Reads a TOML file over `base`. Throws std::runtime_error naming the file,
// key and problem (start-up only).
[[nodiscard]] config load_config_file(const std::filesystem::path& file, config base);

}  // namespace haven::server
