#include <catch2/catch.hpp>

#include "haven/crypto/safety_number.hpp"
#include "test_support.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

TEST_CASE("both sides compute the same 60-digit safety number", "[safety_number]") {
  auto r = seeded(60);
  auto alice = identity_key_pair::generate(r);
  auto bob = identity_key_pair::generate(r);
  auto ab = safety_number(alice.public_keys(), bob.public_keys());
  auto ba = safety_number(bob.public_keys(), alice.public_keys());
  CHECK(ab == ba);
  CHECK(ab.size() == 60);
  CHECK(ab.find_first_not_of("0123456789") == std::string::npos);
  CHECK(format_safety_number(ab).size() == 60 + 11);
}

TEST_CASE("a different identity changes the safety number", "[safety_number]") {
  auto r = seeded(61);
  auto alice = identity_key_pair::generate(r);
  auto bob = identity_key_pair::generate(r);
  auto eve = identity_key_pair::generate(r);
  CHECK(safety_number(alice.public_keys(), bob.public_keys()) != safety_number(alice.public_keys(), eve.public_keys()));
}
