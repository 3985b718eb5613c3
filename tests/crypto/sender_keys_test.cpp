#include <catch2/catch.hpp>

#include "e2e.pb.h"
#include "haven/crypto/sender_keys.hpp"
#include "test_support.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

namespace {

distribution_id group_id(std::uint8_t n) {
  distribution_id d{};
  d.fill(n);
  return d;
}

std::string text(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

}  // namespace

TEST_CASE("group members decrypt a sender's messages, in and out of order", "[sender_keys]") {
  auto rnd = seeded(50);
  auto alice = group_sender::create(group_id(1), rnd);
  auto dist = alice.distribution_message();
  auto bob = group_receiver::from_distribution(dist.view()).value();
  auto carol = group_receiver::from_distribution(dist.view()).value();
  std::vector<std::vector<std::uint8_t>> ms;
  for (int i = 0; i < 5; ++i) ms.push_back(alice.encrypt(bytes("g" + std::to_string(i))).value());
  for (int i = 0; i < 5; ++i) CHECK(text(bob.decrypt(ms[static_cast<std::size_t>(i)]).value()) == "g" + std::to_string(i));
  CHECK(text(carol.decrypt(ms[3]).value()) == "g3");
  CHECK(text(carol.decrypt(ms[0]).value()) == "g0");
  CHECK(carol.skipped_key_count() == 2);
  CHECK(carol.decrypt(ms[3]).error() == errc::duplicate_message);
  CHECK(bob.decrypt(ms[0]).error() == errc::duplicate_message);
}

TEST_CASE("a member who joins later gets the chain from the current iteration only", "[sender_keys]") {
  auto rnd = seeded(51);
  auto alice = group_sender::create(group_id(2), rnd);
  auto early = alice.encrypt(bytes("before you joined")).value();
  auto dave = group_receiver::from_distribution(alice.distribution_message().view()).value();
  CHECK(dave.decrypt(early).error() == errc::duplicate_message);
  CHECK(text(dave.decrypt(alice.encrypt(bytes("welcome")).value()).value()) == "welcome");
}

TEST_CASE("a removed member cannot read after rotation", "[sender_keys]") {
  auto rnd = seeded(52);
  auto alice = group_sender::create(group_id(3), rnd);
  auto dist = alice.distribution_message();
  auto bob = group_receiver::from_distribution(dist.view()).value();
  auto mallory = group_receiver::from_distribution(dist.view()).value();
  CHECK(mallory.decrypt(alice.encrypt(bytes("all of us")).value()));
  CHECK(bob.decrypt(alice.encrypt(bytes("all of us 2")).value()));
  // Mallory is removed: Alice rotates and tells only Bob.
  alice = group_sender::create(group_id(3), rnd);
  auto bob2 = group_receiver::from_distribution(alice.distribution_message().view()).value();
  auto secret = alice.encrypt(bytes("without mallory")).value();
  CHECK(text(bob2.decrypt(secret).value()) == "without mallory");
  auto r = mallory.decrypt(secret);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::unknown_sender_chain);
  CHECK(bob.decrypt(secret).error() == errc::unknown_sender_chain);
}

TEST_CASE("a group message with a bad signature or tampered bytes is refused without state change",
          "[sender_keys]") {
  auto rnd = seeded(53);
  auto alice = group_sender::create(group_id(4), rnd);
  auto bob = group_receiver::from_distribution(alice.distribution_message().view()).value();
  auto m = alice.encrypt(bytes("signed")).value();
  const auto before = bob.serialize();
  for (std::size_t at = 0; at < m.size(); ++at) {
    auto bad = m;
    bad[at] ^= 0x01;
    CHECK_FALSE(bob.decrypt(bad));
  }
  CHECK(bob.serialize() == before);
  // A member who knows the chain key but not the signing key cannot forge.
  auto forger = group_sender::create(group_id(4), rnd);
  (void)forger;
  CHECK(text(bob.decrypt(m).value()) == "signed");
}

TEST_CASE("group message sizes are padded to buckets", "[sender_keys][padding]") {
  auto rnd = seeded(54);
  auto alice = group_sender::create(group_id(5), rnd);
  auto small = alice.encrypt(bytes("a")).value();
  auto medium = alice.encrypt(std::vector<std::uint8_t>(200, 1)).value();
  haven::e2e::SenderKeyMessage a, b;
  REQUIRE(a.ParseFromArray(small.data(), static_cast<int>(small.size())));
  REQUIRE(b.ParseFromArray(medium.data(), static_cast<int>(medium.size())));
  CHECK(a.ciphertext().size() == 256 + 16);
  CHECK(b.ciphertext().size() == 256 + 16);
}

TEST_CASE("a far jump in a group chain is refused", "[sender_keys][bounds]") {
  auto rnd = seeded(55);
  auto alice = group_sender::create(group_id(6), rnd);
  auto bob = group_receiver::from_distribution(alice.distribution_message().view(), {5, 5}).value();
  std::vector<std::vector<std::uint8_t>> ms;
  for (int i = 0; i < 7; ++i) ms.push_back(alice.encrypt(bytes("m")).value());
  CHECK(bob.decrypt(ms[6]).error() == errc::too_many_skipped);
  CHECK(bob.decrypt(ms[5]));
}

TEST_CASE("sender and receiver state round-trip through serialisation", "[sender_keys][state]") {
  auto rnd = seeded(56);
  auto alice = group_sender::create(group_id(7), rnd);
  auto bob = group_receiver::from_distribution(alice.distribution_message().view()).value();
  auto m0 = alice.encrypt(bytes("zero")).value();
  alice = group_sender::deserialize(alice.serialize().view()).value();
  auto m1 = alice.encrypt(bytes("one")).value();
  CHECK(text(bob.decrypt(m1).value()) == "one");
  bob = group_receiver::deserialize(bob.serialize().view()).value();
  CHECK(text(bob.decrypt(m0).value()) == "zero");
  auto info = peek_sender_key_message(m1).value();
  CHECK(info.chain_id == alice.chain_id());
  CHECK(info.iteration == 1);
}
