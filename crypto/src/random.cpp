#include "haven/crypto/random.hpp"

#include <sodium.h>

#include <array>
#include <memory>

#include "haven/crypto/verify.hpp"

namespace haven::crypto {

random_source system_random() {
  ensure_sodium();
  return [](std::span<std::uint8_t> out) { random_fill(out); };
}

random_source deterministic_random(std::span<const std::uint8_t, 32> seed) {
  ensure_sodium();
  struct stream_state {
    std::array<std::uint8_t, 32> key{};
    std::uint64_t block = 0;
  };
  auto state = std::make_shared<stream_state>();
  std::copy(seed.begin(), seed.end(), state->key.begin());
  // Each call takes a fresh nonce (a counter), so calls never overlap.
  return [state](std::span<std::uint8_t> out) {
    std::array<std::uint8_t, crypto_stream_chacha20_ietf_NONCEBYTES> nonce{};
    for (std::size_t i = 0; i < 8; ++i) nonce[i] = static_cast<std::uint8_t>(state->block >> (8 * i));
    ++state->block;
    crypto_stream_chacha20_ietf(out.data(), out.size(), nonce.data(), state->key.data());
  };
}

}  // namespace haven::crypto
