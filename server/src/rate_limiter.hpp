#pragma once
// Token buckets keyed by an address or a mailbox. Thread-safe. The map is
// pruned of full buckets when it grows, so memory stays bounded by the
// number of keys active within one refill period.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "haven/server/config.hpp"

namespace haven::server {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_limiter(rate r) : rate_(r) {}

  // Takes one token for `key`; false when its bucket is empty.
  [[nodiscard]] bool allow(const std::string& key, clock::time_point now = clock::now()) {
    std::lock_guard lock(mutex_);
    if (buckets_.size() > k_prune_at) prune(now);
    auto [it, fresh] = buckets_.try_emplace(key, bucket{rate_.burst, now});
    auto& b = it->second;
    if (!fresh) {
      const std::chrono::duration<double> elapsed = now - b.updated;
      b.tokens = std::min(rate_.burst, b.tokens + elapsed.count() * rate_.per_second);
      b.updated = now;
    }
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

 private:
  static constexpr std::size_t k_prune_at = 100'000;
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  void prune(clock::time_point now) {
    std::erase_if(buckets_, [&](const auto& entry) {
      const std::chrono::duration<double> elapsed = now - entry.second.updated;
      return entry.second.tokens + elapsed.count() * rate_.per_second >= rate_.burst;
    });
  }
  rate rate_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace haven::server
