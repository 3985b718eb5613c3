#include "haven/server/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <stdexcept>

namespace haven::server {
namespace {

[[noreturn]] void bad(const std::filesystem::path& file, std::string_view key, std::string_view why) {
  throw std::runtime_error(file.string() + ": " + std::string(key) + ": " + std::string(why));
}

template <typename T>
void read_number(const toml::table& t, const std::filesystem::path& file, std::string_view key,
                 T& out, T min, T max) {
  auto node = t.at_path(key);
  if (!node) return;
  auto v = node.value<double>();
  if (!v) bad(file, key, "expected a number");
  // Written so that nan fails too (TOML allows nan and inf).
  if (!(*v >= static_cast<double>(min) && *v <= static_cast<double>(max)))
    bad(file, key, "out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  if (std::is_integral_v<T> && *v != std::floor(*v)) bad(file, key, "expected a whole number");
  out = static_cast<T>(*v);
}

template <typename Duration>
void read_duration(const toml::table& t, const std::filesystem::path& file, std::string_view key,
                   Duration& out, long long max) {
  long long v = out.count();
  read_number<long long>(t, file, key, v, 1, max);
  out = Duration(v);
}

void read_rate(const toml::table& t, const std::filesystem::path& file, std::string_view key,
               rate& out) {
  read_number<double>(t, file, std::string(key) + ".per_second", out.per_second, 0.001, 1e7);
  read_number<double>(t, file, std::string(key) + ".burst", out.burst, 1, 1e7);
}

void read_string(const toml::table& t, const std::filesystem::path& file, std::string_view key,
                 std::string& out) {
  auto node = t.at_path(key);
  if (!node) return;
  auto v = node.value<std::string>();
  if (!v) bad(file, key, "expected a string");
  out = *v;
}

void read_path(const toml::table& t, const std::filesystem::path& file, std::string_view key,
               std::filesystem::path& out) {
  std::string path = out.string();
  read_string(t, file, key, path);
  out = path;
}

}  // namespace

config load_config_file(const std::filesystem::path& file, config c) {
  toml::table t;
  try {
    t = toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(file.string() + ": " + std::string(e.description()));
  }
  static constexpr std::string_view known[] = {"server", "tls", "limits", "store", "log"};
  for (const auto& [section, _] : t)
    if (std::ranges::find(known, section.str()) == std::end(known))
      bad(file, section.str(), "unknown section");

  read_string(t, file, "server.listen", c.listen);
  read_number<std::uint16_t>(t, file, "server.port", c.port, 0, 65535);
  read_path(t, file, "server.data_dir", c.data_dir);
  read_path(t, file, "server.web_root", c.web_root);
  read_number<unsigned>(t, file, "server.threads", c.threads, 1, 64);
  read_path(t, file, "tls.cert_file", c.tls_cert_file);
  read_path(t, file, "tls.key_file", c.tls_key_file);

  read_number<std::size_t>(t, file, "limits.max_frame_bytes", c.max_frame_bytes, 1024, 64 << 20);
  read_number<std::size_t>(t, file, "limits.outbound_buffer_bytes", c.outbound_buffer_bytes,
                           64 * 1024, 1 << 30);
  read_duration(t, file, "limits.handshake_timeout_seconds", c.handshake_timeout, 3600);
  read_duration(t, file, "limits.idle_timeout_seconds", c.idle_timeout, 86'400);
  read_number<std::size_t>(t, file, "limits.delivery_window", c.delivery_window, 1, 100'000);
  read_number<std::size_t>(t, file, "limits.max_pending_requests", c.max_pending_requests, 1,
                           100'000);
  read_rate(t, file, "limits.connections_per_address", c.connections_per_address);
  read_rate(t, file, "limits.logins_per_address", c.logins_per_address);
  read_rate(t, file, "limits.sends_per_mailbox", c.sends_per_mailbox);
  read_rate(t, file, "limits.prekey_fetches_per_mailbox", c.prekey_fetches_per_mailbox);
  read_number<std::uint32_t>(t, file, "limits.vault_max_failures", c.vault_max_failures, 1, 1000);

  long long days = c.envelope_ttl.count() / 24;
  read_number<long long>(t, file, "store.envelope_ttl_days", days, 1, 3650);
  c.envelope_ttl = std::chrono::hours(days * 24);
  read_duration(t, file, "store.expiry_interval_seconds", c.expiry_interval, 86'400);
  read_number<std::size_t>(t, file, "store.max_queue_per_device", c.max_queue_per_device, 1,
                           10'000'000);

  read_string(t, file, "log.level", c.log_level);
  if (auto node = t.at_path("log.addresses")) {
    auto v = node.value<bool>();
    if (!v) bad(file, "log.addresses", "expected true or false");
    c.log_addresses = *v;
  }
  return c;
}

}  // namespace haven::server
