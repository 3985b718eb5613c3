#pragma once
// Small helpers shared by the crypto tests.

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "haven/crypto/encoding.hpp"
#include "haven/crypto/random.hpp"

namespace haven::crypto::test {

inline std::vector<std::uint8_t> hex(std::string_view h) {
  auto b = from_hex(h);
  if (!b) throw std::invalid_argument("bad hex in test");
  return *b;
}

inline std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

// A deterministic source seeded by a small number, so tests are repeatable.
inline random_source seeded(std::uint8_t n) {
  std::array<std::uint8_t, 32> seed{};
  seed[0] = n;
  return deterministic_random(seed);
}

}  // namespace haven::crypto::test
