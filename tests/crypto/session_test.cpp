#include <catch2/catch.hpp>

#include <algorithm>

#include "e2e.pb.h"
#include "session_fixture.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

namespace {

struct conversation {
  party alice{1};
  party bob{2};
  encrypted_message first;  // before `b`: start() fills it
  session a;
  session b;

  explicit conversation(bool one_time = true)
      : a(session::initiate(alice.identity, bob.bundle(one_time), alice.random).value()),
        b(start(one_time)) {}

 private:
  session start(bool) {
    first = send(a, "hello bob");
    auto s = bob.accept(first);
    auto plain = s.decrypt(first, bob.random);
    if (!plain || text(*plain) != "hello bob") throw std::runtime_error("handshake failed");
    return s;
  }
};

encrypted_message flip_byte(encrypted_message m, std::size_t at) {
  m.bytes[at % m.bytes.size()] ^= 0x01;
  return m;
}

}  // namespace

TEST_CASE("X3DH with a one-time prekey gives both sides one session", "[x3dh][ratchet]") {
  conversation c;
  CHECK(c.first.type == message_type::prekey);
  CHECK(c.b.remote_identity() == c.alice.identity.public_keys());
  CHECK(c.a.remote_identity() == c.bob.identity.public_keys());
  CHECK(c.a.base_key() == c.b.base_key());
  auto reply = send(c.b, "hi alice");
  CHECK(reply.type == message_type::ratchet);
  CHECK(text(c.a.decrypt(reply, c.alice.random).value()) == "hi alice");
  CHECK_FALSE(c.a.awaiting_reply());
  CHECK(send(c.a, "after reply").type == message_type::ratchet);
}

TEST_CASE("X3DH falls back to the last-resort key and to the signed prekey alone", "[x3dh]") {
  conversation with_last_resort(false);
  auto header = parse_prekey_message(with_last_resort.first.bytes).value();
  CHECK(header.one_time_kind == prekey_kind::last_resort);
  CHECK(header.one_time_id == 2);

  party alice(3), bob(4);
  auto bundle = bob.bundle(true);
  bundle.one_time.reset();
  auto a = session::initiate(alice.identity, bundle, alice.random).value();
  auto m = send(a, "no one-time key");
  auto h = parse_prekey_message(m.bytes).value();
  CHECK(h.one_time_kind == prekey_kind::none);
  auto b = session::respond(bob.identity, bob.spk, nullptr, h).value();
  CHECK(text(b.decrypt(m, bob.random).value()) == "no one-time key");
}

TEST_CASE("the initiator keeps sending prekey messages until it hears back", "[x3dh][ratchet]") {
  conversation c;
  auto second = send(c.a, "second");
  CHECK(second.type == message_type::prekey);
  CHECK(text(c.b.decrypt(second, c.bob.random).value()) == "second");
}

TEST_CASE("the responder needs the one-time key the message names", "[x3dh]") {
  party alice(5), bob(6);
  auto a = session::initiate(alice.identity, bob.bundle(true), alice.random).value();
  auto m = send(a, "x");
  auto h = parse_prekey_message(m.bytes).value();
  auto missing = session::respond(bob.identity, bob.spk, nullptr, h);
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == errc::missing_prekey);
  // The wrong one-time key derives another secret: the message does not open.
  auto wrong = session::respond(bob.identity, bob.spk, &bob.one_time[1].key, h).value();
  auto plain = wrong.decrypt(m, bob.random);
  REQUIRE_FALSE(plain);
  CHECK(plain.error() == errc::decryption_failed);
}

TEST_CASE("messages in both directions decrypt in order", "[ratchet]") {
  conversation c;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < round % 4 + 1; ++i) {
      auto m = send(c.b, "b" + std::to_string(round) + "." + std::to_string(i));
      CHECK(text(c.a.decrypt(m, c.alice.random).value()) == "b" + std::to_string(round) + "." + std::to_string(i));
    }
    auto m = send(c.a, "a" + std::to_string(round));
    CHECK(text(c.b.decrypt(m, c.bob.random).value()) == "a" + std::to_string(round));
  }
}

TEST_CASE("out-of-order and lost messages are handled across ratchet steps", "[ratchet]") {
  conversation c;
  std::vector<encrypted_message> from_bob;
  for (int i = 0; i < 5; ++i) from_bob.push_back(send(c.b, "b" + std::to_string(i)));
  // Alice gets 4, 1, then replies (ratchet step), then Bob sends more.
  CHECK(text(c.a.decrypt(from_bob[4], c.alice.random).value()) == "b4");
  CHECK(text(c.a.decrypt(from_bob[1], c.alice.random).value()) == "b1");
  CHECK(c.a.skipped_key_count() == 3);
  CHECK(text(c.b.decrypt(send(c.a, "reply"), c.bob.random).value()) == "reply");
  auto later = send(c.b, "b5");
  CHECK(text(c.a.decrypt(later, c.alice.random).value()) == "b5");
  // Old-chain messages still open after the step; message 2 stays lost.
  CHECK(text(c.a.decrypt(from_bob[0], c.alice.random).value()) == "b0");
  CHECK(text(c.a.decrypt(from_bob[3], c.alice.random).value()) == "b3");
  CHECK(c.a.skipped_key_count() == 1);
}

TEST_CASE("a replayed message is refused and the state is unchanged", "[ratchet]") {
  conversation c;
  auto m = send(c.b, "once");
  CHECK(c.a.decrypt(m, c.alice.random));
  const auto before = c.a.serialize();
  auto again = c.a.decrypt(m, c.alice.random);
  REQUIRE_FALSE(again);
  CHECK(again.error() == errc::duplicate_message);
  CHECK(c.a.serialize() == before);
  // A replayed skipped message is refused too.
  auto m1 = send(c.b, "one");
  auto m2 = send(c.b, "two");
  CHECK(c.a.decrypt(m2, c.alice.random));
  CHECK(c.a.decrypt(m1, c.alice.random));
  CHECK(c.a.decrypt(m1, c.alice.random).error() == errc::duplicate_message);
  // A replayed first message is refused by the responder.
  CHECK(c.b.decrypt(c.first, c.bob.random).error() == errc::duplicate_message);
}

TEST_CASE("a tampered ciphertext is refused and the state is unchanged", "[ratchet]") {
  conversation c;
  auto good = send(c.b, "genuine message from bob");  // a new ratchet key for Alice
  const auto before = c.a.serialize();
  // Every single-byte change anywhere in the message is refused.
  for (std::size_t at = 0; at < good.bytes.size(); ++at) {
    auto bad = c.a.decrypt(flip_byte(good, at), c.alice.random);
    REQUIRE_FALSE(bad);
    REQUIRE(c.a.serialize() == before);
  }
  // Truncation and garbage too.
  auto cut = good;
  cut.bytes.resize(good.bytes.size() - 1);
  CHECK_FALSE(c.a.decrypt(cut, c.alice.random));
  CHECK_FALSE(c.a.decrypt(encrypted_message{message_type::ratchet, {1, 2, 3}}, c.alice.random));
  REQUIRE(c.a.serialize() == before);
  CHECK(text(c.a.decrypt(good, c.alice.random).value()) == "genuine message from bob");
}

TEST_CASE("a tampered header field is refused (the header is associated data)", "[ratchet]") {
  conversation c;
  auto m1 = send(c.b, "m1");
  auto m2 = send(c.b, "m2");
  haven::e2e::RatchetMessage rm;
  REQUIRE(rm.ParseFromArray(m2.bytes.data(), static_cast<int>(m2.bytes.size())));
  rm.set_previous_counter(rm.previous_counter() + 1);
  encrypted_message forged{message_type::ratchet, std::vector<std::uint8_t>(rm.ByteSizeLong())};
  rm.SerializeToArray(forged.bytes.data(), static_cast<int>(forged.bytes.size()));
  const auto before = c.a.serialize();
  CHECK(c.a.decrypt(forged, c.alice.random).error() == errc::decryption_failed);
  CHECK(c.a.serialize() == before);
  CHECK(c.a.decrypt(m1, c.alice.random));
}

TEST_CASE("a jump past the skip limit is refused with too_many_skipped", "[ratchet][bounds]") {
  party alice(7), bob(8);
  ratchet_limits limits{10, 15};
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random, limits).value();
  auto first = send(a, "hi");
  auto h = parse_prekey_message(first.bytes).value();
  auto b = session::respond(bob.identity, bob.spk, &bob.one_time[0].key, h, limits).value();
  REQUIRE(b.decrypt(first, bob.random));
  std::vector<encrypted_message> ms;
  for (int i = 0; i < 12; ++i) ms.push_back(send(b, "m" + std::to_string(i)));
  // Counter 11 on a new chain needs 11 skipped keys: over the limit of 10.
  auto r = a.decrypt(ms[11], alice.random);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::too_many_skipped);
  CHECK(a.skipped_key_count() == 0);
  CHECK(text(a.decrypt(ms[10], alice.random).value()) == "m10");
  CHECK(a.skipped_key_count() == 10);
}

TEST_CASE("the stored skipped keys are capped, oldest dropped first", "[ratchet][bounds]") {
  party alice(9), bob(10);
  ratchet_limits limits{10, 15};
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random, limits).value();
  auto first = send(a, "hi");
  auto b = session::respond(bob.identity, bob.spk, &bob.one_time[0].key, parse_prekey_message(first.bytes).value(),
                            limits)
               .value();
  REQUIRE(b.decrypt(first, bob.random));
  std::vector<encrypted_message> ms;
  for (int i = 0; i < 21; ++i) ms.push_back(send(b, "m" + std::to_string(i)));
  REQUIRE(a.decrypt(ms[10], alice.random));  // skips 0..9
  REQUIRE(a.decrypt(ms[20], alice.random));  // skips 11..19: 19 stored, capped to 15
  CHECK(a.skipped_key_count() == 15);
  CHECK(a.decrypt(ms[0], alice.random).error() == errc::duplicate_message);  // dropped
  CHECK(a.decrypt(ms[3], alice.random).error() == errc::duplicate_message);  // dropped
  CHECK(text(a.decrypt(ms[4], alice.random).value()) == "m4");                // oldest kept
  CHECK(text(a.decrypt(ms[19], alice.random).value()) == "m19");
}

TEST_CASE("the default bounds are 2000 skipped per chain and 2000 stored", "[ratchet][bounds]") {
  ratchet_limits d;
  CHECK(d.max_skip == 2000);
  CHECK(d.max_stored == 2000);
}

TEST_CASE("a session survives serialisation at every stage", "[ratchet][state]") {
  conversation c;
  auto round_trip = [](session& s) { s = session::deserialize(s.serialize().view()).value(); };
  std::vector<encrypted_message> held;
  for (int i = 0; i < 6; ++i) {
    held.push_back(send(c.b, "held" + std::to_string(i)));
    round_trip(c.b);
  }
  CHECK(c.a.decrypt(held[5], c.alice.random));
  round_trip(c.a);
  CHECK(c.a.skipped_key_count() == 5);
  CHECK(text(c.a.decrypt(held[2], c.alice.random).value()) == "held2");
  round_trip(c.a);
  auto m = send(c.a, "after restore");
  round_trip(c.a);
  CHECK(text(c.b.decrypt(m, c.bob.random).value()) == "after restore");
  CHECK(c.a.serialize() == session::deserialize(c.a.serialize().view()).value().serialize());
}

TEST_CASE("an initiator restored before any reply still sends prekey messages", "[ratchet][state]") {
  party alice(11), bob(12);
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random).value();
  a = session::deserialize(a.serialize().view()).value();
  CHECK(a.awaiting_reply());
  auto m = send(a, "restored");
  REQUIRE(m.type == message_type::prekey);
  auto b = bob.accept(m);
  CHECK(text(b.decrypt(m, bob.random).value()) == "restored");
}

TEST_CASE("corrupt serialised state is refused", "[ratchet][state]") {
  CHECK(session::deserialize(bytes("not a session")).error() == errc::malformed_message);
  haven::e2e::SessionState s;
  s.set_version(2);
  std::string raw = s.SerializeAsString();
  CHECK(session::deserialize(ascii(raw)).error() == errc::unsupported_version);
}

TEST_CASE("a prekey message of another session is refused", "[x3dh]") {
  conversation c;
  party mallory(13);
  auto other = session::initiate(mallory.identity, c.bob.bundle(), mallory.random).value();
  auto m = send(other, "not yours");
  CHECK(c.b.decrypt(m, c.bob.random).error() == errc::session_mismatch);
}

TEST_CASE("a responder cannot send before it has received", "[x3dh]") {
  party alice(14), bob(15);
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random).value();
  auto m = send(a, "x");
  auto b = session::respond(bob.identity, bob.spk, &bob.one_time[0].key, parse_prekey_message(m.bytes).value()).value();
  CHECK(b.encrypt(bytes("too early")).error() == errc::no_sending_chain);
}
