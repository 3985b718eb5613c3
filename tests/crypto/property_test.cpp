// Property-style tests: many messages, random delivery order, drops and
// replays; every delivered message decrypts exactly once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "haven/crypto/sender_keys.hpp"
#include "session_fixture.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

namespace {

struct in_flight {
  std::size_t id;
  bool to_bob;
  encrypted_message message;
};

std::string body(std::size_t id) { return "message #" + std::to_string(id); }

}  // namespace

TEST_CASE("thousands of messages in random order with drops and replays each decrypt exactly once",
          "[ratchet][property]") {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    INFO("scenario seed " << seed);
    std::mt19937 rng(seed);
    party alice(static_cast<std::uint8_t>(100 + seed)), bob(static_cast<std::uint8_t>(200 + seed));
    auto a = session::initiate(alice.identity, bob.bundle(), alice.random).value();
    auto first = send(a, body(0));
    auto b = bob.accept(first);
    REQUIRE(text(b.decrypt(first, bob.random).value()) == body(0));

    constexpr std::size_t total = 3000;
    std::vector<int> decrypted(total, 0);
    decrypted[0] = 1;
    std::vector<bool> dropped(total, false);
    std::vector<in_flight> pending, delivered;
    std::size_t next_id = 1;
    std::size_t refused_replays = 0;

    auto deliver = [&](in_flight f) {
      session& s = f.to_bob ? b : a;
      auto p = s.decrypt(f.message, f.to_bob ? bob.random : alice.random);
      REQUIRE(p);
      REQUIRE(text(*p) == body(f.id));
      ++decrypted[f.id];
      delivered.push_back(std::move(f));
    };

    while (next_id < total) {
      switch (rng() % 4) {
        case 0:
        case 1: {  // a burst from one side
          const bool from_alice = rng() % 2 == 0;
          const std::size_t burst = 1 + rng() % 12;
          for (std::size_t i = 0; i < burst && next_id < total; ++i, ++next_id)
            pending.push_back({next_id, from_alice, send(from_alice ? a : b, body(next_id))});
          break;
        }
        case 2: {  // deliver some of what is in flight, in random order, dropping a few
          std::shuffle(pending.begin(), pending.end(), rng);
          const std::size_t n = pending.empty() ? 0 : rng() % (pending.size() + 1);
          for (std::size_t i = 0; i < n; ++i) {
            auto f = std::move(pending.back());
            pending.pop_back();
            if (rng() % 20 == 0) {
              dropped[f.id] = true;
            } else {
              deliver(std::move(f));
            }
          }
          break;
        }
        default: {  // replay something already delivered: always refused, state unchanged
          if (delivered.empty()) break;
          const auto& f = delivered[rng() % delivered.size()];
          session& s = f.to_bob ? b : a;
          const auto before = s.serialize();
          auto p = s.decrypt(f.message, f.to_bob ? bob.random : alice.random);
          REQUIRE_FALSE(p);
          REQUIRE((p.error() == errc::duplicate_message || p.error() == errc::decryption_failed));
          REQUIRE(s.serialize() == before);
          ++refused_replays;
        }
      }
    }
    std::shuffle(pending.begin(), pending.end(), rng);
    for (auto& f : pending) deliver(std::move(f));

    std::size_t drops = 0;
    for (std::size_t id = 0; id < total; ++id) {
      INFO("message " << id);
      REQUIRE(decrypted[id] == (dropped[id] ? 0 : 1));
      drops += dropped[id] ? 1 : 0;
    }
    CHECK(drops > 0);
    CHECK(refused_replays > 0);
    // Keys of dropped messages are all that may remain.
    CHECK(a.skipped_key_count() + b.skipped_key_count() <= drops);
  }
}

TEST_CASE("thousands of group messages in shuffled windows with drops each decrypt exactly once",
          "[sender_keys][property]") {
  std::mt19937 rng(7);
  auto rnd = seeded(77);
  distribution_id group{};
  auto sender = group_sender::create(group, rnd);
  auto receiver = group_receiver::from_distribution(sender.distribution_message().view()).value();
  constexpr std::size_t total = 3000, window = 150;
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::size_t i = 0; i < total; ++i) sent.push_back(sender.encrypt(bytes(body(i))).value());
  std::vector<std::size_t> order(total);
  for (std::size_t i = 0; i < total; ++i) order[i] = i;
  for (std::size_t start = 0; start < total; start += window)
    std::shuffle(order.begin() + static_cast<std::ptrdiff_t>(start),
                 order.begin() + static_cast<std::ptrdiff_t>(std::min(total, start + window)), rng);
  std::size_t ok = 0, drops = 0;
  for (std::size_t i : order) {
    if (rng() % 25 == 0) {
      ++drops;
      continue;
    }
    auto p = receiver.decrypt(sent[i]);
    REQUIRE(p);
    REQUIRE(std::string(p->begin(), p->end()) == body(i));
    ++ok;
    REQUIRE(receiver.decrypt(sent[i]).error() == errc::duplicate_message);
  }
  CHECK(ok + drops == total);
  CHECK(receiver.skipped_key_count() == drops);
}
