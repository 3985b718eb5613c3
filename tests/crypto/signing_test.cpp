#include <catch2/catch.hpp>

#include <array>
#include <string_view>

#include "haven/crypto/signing.hpp"

using namespace haven::crypto;

TEST_CASE("a signature verifies and a changed message does not", "[signing]") {
  auto key = signing_key::generate(system_random());
  std::string_view text = "haven-auth-v1";
  std::span<const std::uint8_t> msg(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  auto sig = key.sign(msg);
  CHECK(verify_ed25519(key.public_key(), msg, sig));
  sig[0] ^= 1;
  CHECK_FALSE(verify_ed25519(key.public_key(), msg, sig));
}

TEST_CASE("deterministic randomness repeats for the same seed", "[random]") {
  std::array<std::uint8_t, 32> seed{};
  auto a = deterministic_random(seed);
  auto b = deterministic_random(seed);
  std::array<std::uint8_t, 40> x{}, y{};
  a(x);
  b(y);
  CHECK(x == y);
  a(x);
  CHECK_FALSE(x == y);
}
