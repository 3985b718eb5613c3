// Server-side groups in the store: membership rules, one stored body per
// group message, and the body's deletion with its last reference.

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <future>
#include <memory>
#include <span>

#include "store_fixture.hpp"

using namespace haven::store;
using namespace haven::store::test;

namespace {

const group_id k_group = filled<16>(0x6e);

// Keys in one column family.
std::size_t count_keys(fixture& f, const std::string& family) {
  std::size_t count = 0;
  with_raw_db(f, [&](rocksdb::DB& db, auto& families) {
    std::unique_ptr<rocksdb::Iterator> it(
        db.NewIterator(rocksdb::ReadOptions(), families.at(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  });
  return count;
}

result<std::uint32_t> create(fixture& f, const mailbox_id& creator, const group_id& g = k_group) {
  return wait_for<std::uint32_t>([&](auto done) { f.db->create_group(g, creator, k_now, done); });
}

result<std::uint32_t> update(fixture& f, const mailbox_id& by, std::vector<member_change> add,
                             std::vector<mailbox_id> remove = {}) {
  return wait_for<std::uint32_t>(
      [&](auto done) { f.db->update_group(k_group, by, add, remove, done); });
}

result<std::vector<stored_envelope>> group_send(fixture& f, const mailbox_id& from,
                                                std::uint8_t id_tag, std::int64_t at = k_now) {
  return wait_for<std::vector<stored_envelope>>([&](auto done) {
    f.db->enqueue_group(k_group, {from, 1}, filled<16>(id_tag),
                        "group body " + std::to_string(id_tag), at, done);
  });
}

// Acks `e` on `m`'s device 1; true if it was there.
bool ack(fixture& f, const mailbox_id& m, const haven::wire::Envelope& e) {
  envelope_id id{};
  std::copy(e.envelope_id().begin(), e.envelope_id().end(), id.begin());
  auto not_found = f.ack({m, 1}, {{e.seq(), id}});
  REQUIRE(not_found.has_value());
  return not_found->empty();
}

// A group of `alice` (facilitator), `bob` and `carol`.
struct group_fixture : fixture {
  mailbox_id alice = make_account(1), bob = make_account(2), carol = make_account(3);
  explicit group_fixture(std::size_t max_queue = 10'000) : fixture(max_queue) {
    REQUIRE(create(*this, alice) == 1U);
    REQUIRE(update(*this, alice, {{bob, false}, {carol, false}}) == 3U);
  }
};

}  // namespace

TEST_CASE("a group message is stored once and queued for every member but the sender",
          "[store][group]") {
  group_fixture f;
  auto sent = group_send(f, f.alice, 7);
  REQUIRE(sent.has_value());
  REQUIRE(sent->size() == 2);
  // One body buffer shared by both pushes.
  CHECK((*sent)[0].envelope.frame.body == (*sent)[1].envelope.frame.body);
  CHECK(f.db->read_queue({f.alice, 1}, 0, 10)->empty());
  for (const auto& member : {f.bob, f.carol}) {
    auto q = f.db->read_queue({member, 1}, 0, 10);
    REQUIRE(q.has_value());
    REQUIRE(q->size() == 1);
    const auto e = envelope_of(q->front());
    CHECK(e.seq() == 1);
    CHECK(e.envelope_id() == std::string(16, '\x07'));
    CHECK(e.sealed() == "group body 7");
    CHECK(e.received_at() == k_now - k_now % 60);
  }
  // The pushed frame parses to the same envelope as the stored one.
  haven::wire::Envelopes pushed;
  REQUIRE(pushed.ParseFromString((*sent)[0].envelope.frame.bytes()));
  REQUIRE(pushed.envelopes_size() == 1);
  CHECK(pushed.envelopes(0).sealed() == "group body 7");
  // Per group message: the body, its reference count, and the body counter.
  CHECK(count_keys(f, "bodies") == 3);
}

TEST_CASE("group and 1:1 envelopes share one queue in sequence order", "[store][group]") {
  group_fixture f;
  REQUIRE(f.send(f.bob, 1).has_value());
  REQUIRE(group_send(f, f.alice, 2).has_value());
  REQUIRE(f.send(f.bob, 3).has_value());
  auto q = f.db->read_queue({f.bob, 1}, 0, 10);
  REQUIRE(q->size() == 3);
  CHECK(envelope_of((*q)[0]).sealed() == "sealed-1");
  CHECK(envelope_of((*q)[1]).sealed() == "group body 2");
  CHECK(envelope_of((*q)[2]).sealed() == "sealed-3");
  for (std::size_t i = 0; i < 3; ++i) CHECK(envelope_of((*q)[i]).seq() == i + 1);
}

TEST_CASE("the last ack of a group message deletes its body, and a wrong id deletes nothing",
          "[store][group]") {
  group_fixture f;
  REQUIRE(group_send(f, f.alice, 7).has_value());
  const auto bob_copy = envelope_of(f.db->read_queue({f.bob, 1}, 0, 10)->front());
  auto wrong = bob_copy;
  wrong.set_envelope_id(std::string(16, '\x08'));
  CHECK_FALSE(ack(f, f.bob, wrong));
  REQUIRE(ack(f, f.bob, bob_copy));
  CHECK_FALSE(ack(f, f.bob, bob_copy));
  CHECK(f.db->read_queue({f.bob, 1}, 0, 10)->empty());

  // Carol still reads it, after a restart too.
  f.reopen();
  auto carol_q = f.db->read_queue({f.carol, 1}, 0, 10);
  REQUIRE(carol_q->size() == 1);
  CHECK(envelope_of(carol_q->front()).sealed() == "group body 7");
  CHECK(count_keys(f, "bodies") == 3);
  REQUIRE(ack(f, f.carol, envelope_of(carol_q->front())));
  CHECK(count_keys(f, "bodies") == 1);  // only the group's body counter is left
}

TEST_CASE("acks of one group message that reach the writer together count its body down once each",
          "[store][group]") {
  group_fixture f;
  std::vector<mailbox_id> members{f.bob, f.carol};
  std::vector<member_change> more;
  for (std::uint8_t tag = 10; tag < 20; ++tag) {
    members.push_back(f.make_account(tag));
    more.push_back({members.back(), false});
  }
  REQUIRE(update(f, f.alice, more) == 13U);
  REQUIRE(group_send(f, f.alice, 7).has_value());
  // Submitted without waiting, so the writer takes most in one batch.
  const auto ack_together = [&](std::span<const mailbox_id> who) {
    std::vector<std::future<result<std::vector<std::uint64_t>>>> answers;
    for (const auto& m : who) {
      const auto e = envelope_of(f.db->read_queue({m, 1}, 0, 10)->front());
      auto answer = std::make_shared<std::promise<result<std::vector<std::uint64_t>>>>();
      answers.push_back(answer->get_future());
      f.db->ack({m, 1}, {{e.seq(), filled<16>(7)}},
                [answer](result<std::vector<std::uint64_t>> r) { answer->set_value(r); });
    }
    for (auto& a : answers) CHECK(a.get() == std::vector<std::uint64_t>{});
  };
  ack_together(std::span(members).first(7));
  // Five references left: the body and its count stay, also after a reopen.
  CHECK(count_keys(f, "bodies") == 3);
  auto last = f.db->read_queue({members.back(), 1}, 0, 10);
  REQUIRE(last->size() == 1);
  CHECK(envelope_of(last->front()).sealed() == "group body 7");
  ack_together(std::span(members).subspan(7));
  CHECK(count_keys(f, "bodies") == 1);  // only the group's body counter is left
  for (const auto& m : members) CHECK(f.db->read_queue({m, 1}, 0, 10)->empty());
}

TEST_CASE("an ack in the batch that stored its group entries counts each body down once",
          "[store][group]") {
  group_fixture f;
  // Submitted without waiting, so the ack shares a batch with some of the
  // sends that stored its entries (they skip the batch's index).
  std::vector<std::future<result<std::vector<stored_envelope>>>> sent;
  for (std::uint8_t tag = 1; tag <= 12; ++tag) {
    auto answer = std::make_shared<std::promise<result<std::vector<stored_envelope>>>>();
    sent.push_back(answer->get_future());
    f.db->enqueue_group(k_group, {f.alice, 1}, filled<16>(tag),
                        "group body " + std::to_string(tag), k_now,
                        [answer](auto r) { answer->set_value(std::move(r)); });
  }
  // The same ack twice: the second must not count anything down again.
  std::vector<std::future<result<std::vector<std::uint64_t>>>> acked;
  for (int twice = 0; twice < 2; ++twice) {
    auto answer = std::make_shared<std::promise<result<std::vector<std::uint64_t>>>>();
    acked.push_back(answer->get_future());
    f.db->ack({f.bob, 1}, {{10, filled<16>(10)}, {11, filled<16>(11)}, {12, filled<16>(12)}},
              [answer](auto r) { answer->set_value(std::move(r)); });
  }
  for (auto& s : sent) REQUIRE(s.get().has_value());
  CHECK(acked[0].get() == std::vector<std::uint64_t>{});
  CHECK(acked[1].get() == std::vector<std::uint64_t>{10, 11, 12});
  CHECK(f.db->read_queue({f.bob, 1}, 0, 100)->size() == 9);
  // Carol's acks free the last three bodies only if bob's counted each down.
  for (std::uint8_t seq = 10; seq <= 12; ++seq)
    CHECK(f.ack({f.carol, 1}, {{seq, filled<16>(seq)}}) == std::vector<std::uint64_t>{});
  CHECK(count_keys(f, "bodies") == 9 * 2 + 1);  // nine bodies and counts, the counter
  f.reopen();
  CHECK(f.db->read_queue({f.bob, 1}, 0, 100)->size() == 9);
  CHECK(f.db->read_queue({f.carol, 1}, 0, 100)->size() == 9);
}

TEST_CASE("expiry deletes group references and then the body", "[store][group]") {
  group_fixture f;
  REQUIRE(group_send(f, f.alice, 1, k_now - 7200).has_value());
  REQUIRE(group_send(f, f.alice, 2, k_now).has_value());
  auto removed = wait_for<std::size_t>([&](auto done) { f.db->expire(k_now - 3600, done); });
  REQUIRE(removed == 2U);
  for (const auto& member : {f.bob, f.carol}) {
    auto q = f.db->read_queue({member, 1}, 0, 10);
    REQUIRE(q->size() == 1);
    CHECK(envelope_of(q->front()).sealed() == "group body 2");
  }
  CHECK(count_keys(f, "bodies") == 3);  // the second message's body and count, the counter
}

TEST_CASE("only facilitators change a group, a member may leave, and strangers are refused",
          "[store][group]") {
  group_fixture f;
  const auto dave = f.make_account(4);
  CHECK(create(f, dave).error() == errc::already_exists);
  CHECK(update(f, f.bob, {{dave, false}}).error() == errc::not_member);
  CHECK(update(f, f.bob, {}, {f.carol}).error() == errc::not_member);
  CHECK(update(f, dave, {}, {dave}).error() == errc::not_member);
  CHECK(group_send(f, dave, 1).error() == errc::not_member);
  CHECK(wait_for<std::uint32_t>([&](auto done) {
          f.db->update_group(filled<16>(0x01), f.alice, {}, {f.bob}, done);
        }).error() == errc::not_member);

  REQUIRE(update(f, f.bob, {}, {f.bob}) == 2U);  // bob leaves
  CHECK(group_send(f, f.bob, 2).error() == errc::not_member);
  auto sent = group_send(f, f.alice, 3);
  REQUIRE(sent.has_value());
  REQUIRE(sent->size() == 1);
  CHECK(sent->front().address.mailbox == f.carol);
  CHECK(f.db->read_queue({f.bob, 1}, 0, 10)->empty());

  // A facilitator made by alice may add; the last member leaving ends the group.
  REQUIRE(update(f, f.alice, {{f.carol, true}}) == 2U);
  REQUIRE(update(f, f.carol, {{dave, false}}) == 3U);
  REQUIRE(update(f, f.alice, {}, {f.alice}) == 2U);
  REQUIRE(update(f, f.carol, {}, {dave}) == 1U);
  REQUIRE(update(f, f.carol, {}, {f.carol}) == 0U);
  CHECK(group_send(f, f.carol, 4).error() == errc::not_member);
  CHECK(create(f, dave) == 1U);
}

TEST_CASE("a group holds at most max_group_members", "[store][group]") {
  fixture f;
  f.opts.max_group_members = 3;
  f.reopen();
  const auto a = f.make_account(1), b = f.make_account(2), c = f.make_account(3),
             d = f.make_account(4);
  REQUIRE(create(f, a) == 1U);
  CHECK(update(f, a, {{b, false}, {c, false}, {d, false}}).error() == errc::group_full);
  REQUIRE(update(f, a, {{b, false}, {c, false}}) == 3U);
  CHECK(update(f, a, {{d, false}}).error() == errc::group_full);
  REQUIRE(update(f, a, {{d, false}}, {b}) == 3U);  // removals count too
}

TEST_CASE("a member whose queue is full misses a group message, and the others get it",
          "[store][group]") {
  group_fixture f(2);
  REQUIRE(f.send(f.bob, 1).has_value());
  REQUIRE(f.send(f.bob, 2).has_value());
  auto sent = group_send(f, f.alice, 3);
  REQUIRE(sent.has_value());
  REQUIRE(sent->size() == 1);
  CHECK(sent->front().address.mailbox == f.carol);
  CHECK(f.db->read_queue({f.bob, 1}, 0, 10)->size() == 2);
}

TEST_CASE("a group send refused midway stores nothing for anyone", "[store][group]") {
  group_fixture f(2);  // queues hold two
  const auto dave = f.make_account(4);
  REQUIRE(update(f, f.alice, {{dave, false}}) == 4U);
  // Dave's account record turns unreadable. Members are sent to in order,
  // so bob and carol are queued before the send meets it.
  with_raw_db(f, [&](rocksdb::DB& db, auto& families) {
    const std::string key(dave.begin(), dave.end());  // keys.hpp: the mailbox id
    REQUIRE(db.Put(rocksdb::WriteOptions(), families.at("accounts"), key, "\xff not a record")
                .ok());
  });
  CHECK(group_send(f, f.alice, 9).error() == errc::corrupt);
  for (const auto& member : {f.bob, f.carol}) CHECK(f.db->read_queue({member, 1}, 0, 10)->empty());
  // An ack naming what the send would have queued finds nothing either.
  CHECK(f.ack({f.carol, 1}, {{1, filled<16>(9)}}) == std::vector<std::uint64_t>{1});
  // Neither the queues' counters nor the body moved: the next envelope is
  // bob's first and his queue has room for two, also after a restart.
  auto sent = f.send(f.bob, 10);
  REQUIRE(sent.has_value());
  CHECK(sent->front().envelope.seq == 1);
  f.reopen();
  sent = f.send(f.bob, 11);
  REQUIRE(sent.has_value());
  CHECK(sent->front().envelope.seq == 2);
  CHECK(f.send(f.bob, 12).error() == errc::queue_full);
  CHECK(count_keys(f, "bodies") == 0);
}

TEST_CASE("a mailbox without an account is not added to a group", "[store][group]") {
  group_fixture f;
  CHECK(update(f, f.alice, {{filled<16>(0x55), false}}).error() == errc::not_found);
  CHECK(update(f, f.alice, {{filled<16>(0x55), false}}, {f.bob}).error() == errc::not_found);
  CHECK(group_send(f, f.alice, 1)->size() == 2);  // bob and carol, as before
}
