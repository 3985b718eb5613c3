#pragma once
// Generates every file of tests/vectors/ (name -> JSON text). Used by the
// `haven_crypto_vectors` command and by the test that fails on drift.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "haven/crypto/random.hpp"

namespace haven::crypto::vectors {

// Throws std::runtime_error if our implementation disagrees with a
// published vector (the generator refuses to write a wrong file).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> generate_all();

// A random source that records every draw, for transcripts.
class recorder {
 public:
  explicit recorder(random_source inner);
  [[nodiscard]] const random_source& source() const noexcept { return source_; }
  [[nodiscard]] std::vector<std::string> draws_hex() const;

 private:
  std::shared_ptr<std::vector<std::vector<std::uint8_t>>> draws_;
  random_source source_;
};

// A random source that replays recorded draws in order; throws
// std::runtime_error when asked for more draws or another size.
[[nodiscard]] random_source replay(const std::vector<std::string>& draws_hex);

}  // namespace haven::crypto::vectors
