// havend's config parser (server::load_config_file). The input is written
// to a memfd and loaded through /proc/self/fd/N. std::runtime_error is the
// expected refusal; anything else escaping is a bug (libFuzzer reports the
// uncaught exception), and so is a config outside the ranges that
// deploy/havend.toml documents.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "haven/server/config.hpp"

namespace {

bool in(double v, double lo, double hi) { return v >= lo && v <= hi; }  // false for NaN

bool valid_rate(const haven::server::rate& r) { return in(r.per_second, 0.001, 1e7) && in(r.burst, 1, 1e7); }

bool valid(const haven::server::config& c) {
  return in(c.threads, 1, 64) && in(static_cast<double>(c.max_frame_bytes), 1024, 64 << 20) &&
         in(static_cast<double>(c.outbound_buffer_bytes), 64 * 1024, 1 << 30) &&
         in(static_cast<double>(c.handshake_timeout.count()), 1, 3600) &&
         in(static_cast<double>(c.idle_timeout.count()), 1, 86'400) &&
         in(static_cast<double>(c.delivery_window), 1, 100'000) &&
         in(static_cast<double>(c.max_pending_requests), 1, 100'000) && valid_rate(c.connections_per_address) &&
         valid_rate(c.logins_per_address) && valid_rate(c.sends_per_mailbox) &&
         valid_rate(c.prekey_fetches_per_mailbox) && in(c.vault_max_failures, 1, 1000) &&
         in(static_cast<double>(c.envelope_ttl.count()), 24, 3650 * 24) &&
         in(static_cast<double>(c.expiry_interval.count()), 1, 86'400) &&
         in(static_cast<double>(c.max_queue_per_device), 1, 10'000'000);
}

int file = -1;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  file = memfd_create("havend.toml", MFD_CLOEXEC);
  return file < 0 ? 1 : 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (ftruncate(file, 0) != 0 || pwrite(file, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  try {
    const auto c = haven::server::load_config_file("/proc/self/fd/" + std::to_string(file), {});
    if (!valid(c)) {
      std::fputs("config fuzz: a value outside its documented range was accepted\n", stderr);
      std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
