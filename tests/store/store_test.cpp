#include <catch2/catch.hpp>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "store_fixture.hpp"

using namespace haven::store;
using namespace haven::store::test;

TEST_CASE("queued envelopes come back in sequence order across byte boundaries", "[store]") {
  fixture f;
  auto m = f.make_account();
  for (int i = 0; i < 300; ++i) REQUIRE(f.send(m, static_cast<std::uint8_t>(i)).has_value());
  auto q = f.db->read_queue({m, 1}, 0, 1000);
  REQUIRE(q.has_value());
  REQUIRE(q->size() == 300);
  for (std::size_t i = 0; i < q->size(); ++i) {
    CHECK((*q)[i].seq == i + 1);
    CHECK(envelope_of((*q)[i]).seq() == i + 1);
  }
  auto tail = f.db->read_queue({m, 1}, 255, 2);
  REQUIRE(tail.has_value());
  REQUIRE(tail->size() == 2);
  CHECK((*tail)[0].seq == 256);
  CHECK((*tail)[1].seq == 257);
}

TEST_CASE("an enqueue is readable when `written` runs, before `done` reports it durable",
          "[store]") {
  fixture f;
  auto m = f.make_account();
  std::mutex mutex;
  std::vector<std::string> events;
  std::size_t readable_when_written = 0;
  auto r = wait_for<std::vector<stored_envelope>>([&](auto done) {
    f.db->enqueue(
        m, filled<16>(1), {{1, "sealed"}}, k_now,
        [&, done](result<std::vector<stored_envelope>> stored) {
          {
            std::lock_guard lock(mutex);
            events.push_back("done");
          }
          done(std::move(stored));
        },
        [&](const std::vector<stored_envelope>& stored) {
          std::lock_guard lock(mutex);
          events.push_back("written " + std::to_string(stored.size()));
          readable_when_written = f.db->read_queue({m, 1}, 0, 10)->size();
        });
  });
  REQUIRE(r.has_value());
  // Catch2 is not thread-safe: the callbacks record, the checks run here.
  CHECK(events == std::vector<std::string>{"written 1", "done"});
  CHECK(readable_when_written == 1);

  // A refused enqueue is never `written`.
  bool written = false;
  auto refused = wait_for<std::vector<stored_envelope>>([&](auto done) {
    f.db->enqueue(m, filled<16>(2), {{9, "no such device"}}, k_now, done,
                  [&](const auto&) { written = true; });
  });
  CHECK(refused.error() == errc::unknown_device);
  CHECK_FALSE(written);
}

TEST_CASE("an ack deletes only the envelope it names", "[store]") {
  fixture f;
  auto m = f.make_account();
  REQUIRE(f.send(m, 1).has_value());
  REQUIRE(f.send(m, 2).has_value());
  const device_address dev{m, 1};
  using seqs = std::vector<std::uint64_t>;

  CHECK(f.ack(dev, {{1, filled<16>(2)}}) == seqs{1});
  CHECK(f.db->read_queue(dev, 0, 10)->size() == 2);

  CHECK(f.ack(dev, {{1, filled<16>(1)}}) == seqs{});
  auto left = f.db->read_queue(dev, 0, 10);
  REQUIRE(left->size() == 1);
  CHECK(envelope_of(left->front()).envelope_id() == std::string(16, '\2'));

  CHECK(f.ack(dev, {{1, filled<16>(1)}}) == seqs{1});
  CHECK(f.db->read_queue(dev, 0, 10)->size() == 1);
}

TEST_CASE("one ack deletes a batch: the ones not there are named, the rest go", "[store]") {
  fixture f(4);
  auto m = f.make_account();
  for (std::uint8_t i = 1; i <= 4; ++i) REQUIRE(f.send(m, i).has_value());
  const device_address dev{m, 1};
  using seqs = std::vector<std::uint64_t>;
  // seq 2 under a wrong id, seq 9 never stored, seq 3 named twice.
  CHECK(f.ack(dev, {{1, filled<16>(1)},
                    {2, filled<16>(7)},
                    {3, filled<16>(3)},
                    {9, filled<16>(9)},
                    {3, filled<16>(3)}}) == seqs{2, 9, 3});
  auto left = f.db->read_queue(dev, 0, 10);
  REQUIRE(left->size() == 2);
  CHECK(envelope_of((*left)[0]).seq() == 2);
  CHECK(envelope_of((*left)[1]).seq() == 4);
  // The count fell by two, exactly: two sends fit the cap of 4, a third does not.
  CHECK(f.send(m, 5).has_value());
  CHECK(f.send(m, 6).has_value());
  CHECK(f.send(m, 7).error() == errc::queue_full);
  f.reopen();
  CHECK(f.db->read_queue(dev, 0, 10)->size() == 4);
}

namespace {

// A file system whose write-ahead log syncs wait at a gate while it is
// held, so a test can keep one batch's sync going and watch the store; it
// can also refuse the log's appends, to fail the next batch's write.
class held_sync_fs : public rocksdb::FileSystemWrapper {
 public:
  explicit held_sync_fs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "HeldSyncFS"; }

  std::atomic<bool> refuse_appends{false};
  std::atomic<int> refused{0};  // appends refused so far

  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    changed_.notify_all();
  }
  // Returns once a sync is waiting at the gate.
  void wait_for_held_sync() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_ > 0; });
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* dbg) override {
    auto s = target()->NewWritableFile(name, options, file, dbg);
    if (s.ok() && name.ends_with(".log"))
      *file = std::make_unique<gated_file>(std::move(*file), *this);
    return s;
  }

 private:
  rocksdb::IOStatus refuse() {
    ++refused;
    return rocksdb::IOStatus::IOError("refused (test)");
  }

  void pass_gate() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !held_; });
    --waiting_;
  }

  class gated_file : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    gated_file(std::unique_ptr<rocksdb::FSWritableFile> file, held_sync_fs& fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      fs_.pass_gate();
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      fs_.pass_gate();
      return target()->Fsync(options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_.refuse_appends) return fs_.refuse();
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_.refuse_appends) return fs_.refuse();
      return target()->Append(data, options, info, dbg);
    }

   private:
    held_sync_fs& fs_;
  };

  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  int waiting_ = 0;
};

// A store on a held_sync_fs, with one account.
struct held_sync_fixture {
  std::shared_ptr<held_sync_fs> fs = std::make_shared<held_sync_fs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);  // outlives the store
  fixture f;
  mailbox_id m;
  held_sync_fixture() {
    f.opts.env = env.get();
    f.reopen();
    m = f.make_account();
  }
};

}  // namespace

TEST_CASE("a send that comes while another syncs is written and pushed before that sync ends",
          "[store]") {
  held_sync_fixture h;
  using stored = result<std::vector<stored_envelope>>;

  h.fs->hold();
  std::promise<stored> first_done;
  h.f.db->enqueue(h.m, filled<16>(1), {{1, "sealed-1"}}, k_now,
                  [&](stored r) { first_done.set_value(std::move(r)); });
  h.fs->wait_for_held_sync();  // the first send's sync has begun and waits

  std::promise<void> second_written;
  std::promise<stored> second_done;
  h.f.db->enqueue(
      h.m, filled<16>(2), {{1, "sealed-2"}}, k_now,
      [&](stored r) { second_done.set_value(std::move(r)); },
      [&](const std::vector<stored_envelope>&) { second_written.set_value(); });
  // Not a timing check: a writer that syncs in line never gets here while
  // the sync is held, and the wait only bounds how long the test hangs.
  const bool pushed_during_sync =
      second_written.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  auto first = first_done.get_future();
  const bool first_done_before_sync =
      first.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  const auto queued = h.f.db->read_queue({h.m, 1}, 0, 10);
  h.fs->release();  // before any check: a failed REQUIRE would leave the store's close held
  REQUIRE(queued.has_value());

  CHECK(pushed_during_sync);
  CHECK(queued->size() == 2);  // both readable while the first one's sync was held
  CHECK_FALSE(first_done_before_sync);  // done still means durable
  CHECK(first.get().has_value());
  CHECK(second_done.get_future().get().has_value());
}

// Completions run in the order written, a failed batch's too: one whose
// write fails while the batch before it still syncs is answered after it.
TEST_CASE("a batch whose write fails is completed after the batch written before it", "[store]") {
  held_sync_fixture h;
  using stored = result<std::vector<stored_envelope>>;
  std::mutex mutex;
  std::vector<std::pair<int, bool>> completed;  // (send, succeeded), in the order completed
  const auto record = [&](int send) {
    return [&, send](stored r) {
      std::lock_guard lock(mutex);
      completed.emplace_back(send, r.has_value());
    };
  };

  h.fs->hold();
  h.f.db->enqueue(h.m, filled<16>(1), {{1, "sealed-1"}}, k_now, record(1));
  h.fs->wait_for_held_sync();  // the first send is written; its sync waits
  h.fs->refuse_appends = true;
  h.f.db->enqueue(h.m, filled<16>(2), {{1, "sealed-2"}}, k_now, record(2));
  // Until the second write has failed; the bound only ends a hang.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (h.fs->refused == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  h.fs->release();  // before any check, as above
  h.f.db->close();  // every completion has run
  h.fs->refuse_appends = false;

  REQUIRE(h.fs->refused > 0);
  REQUIRE(completed.size() == 2);
  CHECK(completed[0].first == 1);
  CHECK(completed[1] == std::pair(2, false));
}

TEST_CASE("acks and expiry in one batch delete each envelope once", "[store]") {
  fixture f(16);
  auto m = f.make_account();
  const device_address dev{m, 1};
  for (std::uint8_t i = 1; i <= 12; ++i) REQUIRE(f.send(m, i, 1, k_now - 7200).has_value());
  // The writer waits in a send's `written` hook while the rest queue up
  // behind it, so they are prepared together as one batch.
  std::promise<void> gate;
  auto held = gate.get_future().share();
  std::promise<result<std::vector<stored_envelope>>> fresh;
  f.db->enqueue(
      m, filled<16>(13), {{1, "sealed-13"}}, k_now, [&](auto r) { fresh.set_value(r); },
      [held](const auto&) { held.wait(); });
  using answer = std::promise<result<std::vector<std::uint64_t>>>;
  std::array<answer, 3> acks;
  const std::vector<delivered_envelope> first_three{
      {1, filled<16>(1)}, {2, filled<16>(2)}, {3, filled<16>(3)}};
  f.db->ack(dev, first_three, [&](auto r) { acks[0].set_value(r); });
  f.db->ack(dev, first_three, [&](auto r) { acks[1].set_value(r); });  // the same again
  f.db->ack(dev, {{4, filled<16>(9)}}, [&](auto r) { acks[2].set_value(r); });  // wrong id
  std::promise<result<std::size_t>> expired;
  f.db->expire(k_now - 3600, [&](auto r) { expired.set_value(r); });
  gate.set_value();

  REQUIRE(fresh.get_future().get().has_value());
  using seqs = std::vector<std::uint64_t>;
  CHECK(acks[0].get_future().get() == seqs{});
  CHECK(acks[1].get_future().get() == seqs{1, 2, 3});
  CHECK(acks[2].get_future().get() == seqs{4});
  CHECK(expired.get_future().get() == 9U);  // seqs 4 to 12, each once
  const auto left = f.db->read_queue(dev, 0, 100);
  REQUIRE(left->size() == 1);
  CHECK(envelope_of(left->front()).seq() == 13);
  // One counted of 16, also after a restart: fifteen more fit.
  f.reopen();
  for (std::uint8_t i = 14; i <= 28; ++i) REQUIRE(f.send(m, i).has_value());
  CHECK(f.send(m, 29).error() == errc::queue_full);
}

TEST_CASE("an envelope stored and acked in one batch is gone for a later ack", "[store]") {
  fixture f;
  auto m = f.make_account();
  const device_address dev{m, 1};
  // The writer waits in the first send's `written` hook; the second send
  // and its ack, submitted only once it waits there, make the next batch.
  std::promise<void> waiting, gate;
  auto held = gate.get_future().share();
  using stored = std::promise<result<std::vector<stored_envelope>>>;
  stored first, second;
  f.db->enqueue(
      m, filled<16>(1), {{1, "sealed-1"}}, k_now, [&](auto r) { first.set_value(r); },
      [&waiting, held](const auto&) {
        waiting.set_value();
        held.wait();
      });
  waiting.get_future().wait();
  f.db->enqueue(m, filled<16>(2), {{1, "sealed-2"}}, k_now, [&](auto r) { second.set_value(r); });
  std::promise<result<std::vector<std::uint64_t>>> acked;
  f.db->ack(dev, {{2, filled<16>(2)}}, [&](auto r) { acked.set_value(r); });
  gate.set_value();

  REQUIRE(first.get_future().get().has_value());
  REQUIRE(second.get_future().get().has_value());
  using seqs = std::vector<std::uint64_t>;
  CHECK(acked.get_future().get() == seqs{});
  // The writer's cache of entries must not keep what its batch deleted.
  CHECK(f.ack(dev, {{2, filled<16>(2)}}) == seqs{2});
  const auto left = f.db->read_queue(dev, 0, 100);
  REQUIRE(left->size() == 1);
  CHECK(envelope_of(left->front()).seq() == 1);
}

TEST_CASE("an ack that meets an unreadable queue entry is refused whole and deletes nothing",
          "[store]") {
  fixture f(2);
  auto m = f.make_account();
  REQUIRE(f.send(m, 1).has_value());
  REQUIRE(f.send(m, 2).has_value());
  const device_address dev{m, 1};
  // Seq 2's stored bytes turn unreadable. The key is keys.hpp's queue
  // entry: the mailbox id, the device and the seq, both big-endian.
  with_raw_db(f, [&](rocksdb::DB& db, auto& families) {
    std::string key(m.begin(), m.end());
    key += std::string("\0\0\0\1", 4);
    key += std::string("\0\0\0\0\0\0\0\2", 8);
    REQUIRE(db.Put(rocksdb::WriteOptions(), families.at("queue"), key, "\xff not an envelope")
                .ok());
  });
  auto refused = f.ack(dev, {{1, filled<16>(1)}, {2, filled<16>(2)}});
  REQUIRE(!refused.has_value());
  CHECK(refused.error() == errc::corrupt);
  // Seq 1 was not deleted either: still queued and still counted, so the
  // queue (cap 2) is full until an ack of seq 1 alone removes it.
  CHECK(f.db->read_queue(dev, 0, 10)->size() == 2);
  CHECK(f.send(m, 3).error() == errc::queue_full);
  CHECK(f.ack(dev, {{1, filled<16>(1)}}) == std::vector<std::uint64_t>{});
  CHECK(f.db->read_queue(dev, 0, 10)->size() == 1);
  CHECK(f.send(m, 3).has_value());
}

TEST_CASE("a queue counter changed by many requests at once is saved right", "[store]") {
  fixture f(16);
  auto m = f.make_account();
  const device_address dev{m, 1};
  // Submitted without waiting, so the writer takes them in few batches,
  // each changing the counter many times and writing it once.
  std::mutex mutex;
  std::size_t stored = 0;
  std::vector<std::uint64_t> not_found{99};
  for (std::uint8_t i = 1; i <= 12; ++i)
    f.db->enqueue(m, filled<16>(i), {{1, "sealed"}}, k_now, [&](auto r) {
      std::lock_guard lock(mutex);
      stored += r.has_value() ? 1 : 0;
    });
  auto acked = wait_for<std::vector<std::uint64_t>>([&](auto done) {
    f.db->ack(dev, {{1, filled<16>(1)}, {2, filled<16>(2)}, {3, filled<16>(3)}}, done);
  });
  REQUIRE(acked.has_value());
  CHECK(acked->empty());
  f.reopen();  // waits for the writer, then reads the counter back from disk
  CHECK(stored == 12);
  CHECK(f.db->read_queue(dev, 0, 100)->size() == 9);
  // 9 held of 16: seven more fit, with the next seqs, and the eighth does not.
  for (std::uint8_t i = 13; i <= 19; ++i) {
    auto sent = f.send(m, i);
    REQUIRE(sent.has_value());
    CHECK(sent->front().envelope.seq == i);
  }
  CHECK(f.send(m, 20).error() == errc::queue_full);
}

TEST_CASE("another mailbox's ack cannot touch this queue", "[store]") {
  fixture f;
  auto alice = f.make_account(1);
  auto bob = f.make_account(2);
  REQUIRE(f.send(alice, 7).has_value());
  CHECK(f.ack({bob, 1}, {{1, filled<16>(7)}}) == std::vector<std::uint64_t>{1});
  CHECK(f.db->read_queue({alice, 1}, 0, 10)->size() == 1);
}

TEST_CASE("envelopes older than the cutoff expire and newer ones stay", "[store]") {
  fixture f;
  auto m = f.make_account();
  for (int i = 0; i < 700; ++i)  // more than one expiry chunk
    REQUIRE(f.send(m, static_cast<std::uint8_t>(i), 1, k_now - 10 * 86'400).has_value());
  REQUIRE(f.send(m, 0xee, 1, k_now).has_value());
  auto removed = wait_for<std::size_t>([&](auto done) { f.db->expire(k_now - 86'400, done); });
  REQUIRE(removed.has_value());
  CHECK(*removed == 700);
  auto left = f.db->read_queue({m, 1}, 0, 1000);
  REQUIRE(left->size() == 1);
  CHECK(envelope_of(left->front()).envelope_id() == std::string(16, '\xee'));
}

TEST_CASE("a full queue refuses more until an ack makes room", "[store]") {
  fixture f(3);
  auto m = f.make_account();
  for (std::uint8_t i = 1; i <= 3; ++i) REQUIRE(f.send(m, i).has_value());
  CHECK(f.send(m, 4).error() == errc::queue_full);
  REQUIRE(f.ack({m, 1}, {{1, filled<16>(1)}}) == std::vector<std::uint64_t>{});
  CHECK(f.send(m, 4).has_value());
}

TEST_CASE("a send to an unknown device stores nothing", "[store]") {
  fixture f;
  auto m = f.make_account();
  auto r = wait_for<std::vector<stored_envelope>>([&](auto done) {
    f.db->enqueue(m, filled<16>(1), {{1, "a"}, {9, "b"}}, k_now, done);
  });
  CHECK(r.error() == errc::unknown_device);
  CHECK(f.db->read_queue({m, 1}, 0, 10)->empty());
  CHECK(f.send(filled<16>(0x55), 1).error() == errc::not_found);
}

TEST_CASE("sequence numbers keep rising across an emptied queue and a reopen", "[store]") {
  fixture f;
  auto m = f.make_account();
  REQUIRE(f.send(m, 1).has_value());
  REQUIRE(f.ack({m, 1}, {{1, filled<16>(1)}}) == std::vector<std::uint64_t>{});
  f.reopen();
  auto r = f.send(m, 2);
  REQUIRE(r.has_value());
  CHECK(r->front().envelope.seq == 2);
  auto q = f.db->read_queue({m, 1}, 0, 10);
  REQUIRE(q->size() == 1);
  CHECK(q->front().seq == 2);
}

TEST_CASE("an invite registers exactly one account and an expired one none", "[store]") {
  fixture f;
  auto org = f.make_org();
  auto invite = f.make_invite(org);
  new_account a;
  a.mailbox = filled<16>(1);
  a.created_at = k_now;
  auto first = wait_for<AccountRecord>([&](auto done) { f.db->register_account(invite, a, done); });
  REQUIRE(first.has_value());
  CHECK(first->role() == haven::wire::ROLE_SURVIVOR);
  a.mailbox = filled<16>(2);
  auto second = wait_for<AccountRecord>([&](auto done) { f.db->register_account(invite, a, done); });
  CHECK(second.error() == errc::invalid_invite);

  auto old = f.make_invite(org, k_now - 1, 2);
  a.mailbox = filled<16>(3);
  auto expired = wait_for<AccountRecord>([&](auto done) { f.db->register_account(old, a, done); });
  CHECK(expired.error() == errc::invalid_invite);
  CHECK(f.db->find_account(filled<16>(3)).error() == errc::not_found);
}

TEST_CASE("an account's access key hash is found once it registers, and a miss is not remembered",
          "[store]") {
  fixture f;
  auto org = f.make_org();
  new_account a;
  a.mailbox = filled<16>(4);
  a.access_key_hash = filled<32>(9);
  a.created_at = k_now;
  // Asked before it exists: not_found, and not remembered as such.
  CHECK(f.db->find_access_key_hash(a.mailbox).error() == errc::not_found);
  auto made = wait_for<AccountRecord>(
      [&](auto done) { f.db->register_account(f.make_invite(org), a, done); });
  REQUIRE(made.has_value());
  for (int i = 0; i < 2; ++i) {  // read, then from the cache
    auto hash = f.db->find_access_key_hash(a.mailbox);
    REQUIRE(hash.has_value());
    CHECK(*hash == a.access_key_hash);
  }
  CHECK(f.db->find_access_key_hash(filled<16>(5)).error() == errc::not_found);
}

TEST_CASE("concurrent registrations with one invite: exactly one wins", "[store]") {
  fixture f;
  auto invite = f.make_invite(f.make_org());
  std::atomic<int> wins{0}, refusals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      new_account a;
      a.mailbox = filled<16>(static_cast<std::uint8_t>(i + 1));
      a.created_at = k_now;
      auto r = wait_for<AccountRecord>([&](auto done) { f.db->register_account(invite, a, done); });
      (r ? wins : refusals)++;
    });
  for (auto& t : threads) t.join();
  CHECK(wins == 1);
  CHECK(refusals == 15);
}

TEST_CASE("each one-time prekey is handed out once, then the last-resort key", "[store]") {
  fixture f;
  auto m = f.make_account();
  haven::wire::UploadPrekeysRequest up;
  up.mutable_signed_prekey()->set_id(7);
  up.mutable_last_resort()->set_id(99);
  for (std::uint32_t i = 1; i <= 20; ++i) up.add_one_time()->set_id(i);
  auto held = wait_for<std::uint32_t>([&](auto done) { f.db->upload_prekeys({m, 1}, up, done); });
  REQUIRE(held.has_value());
  CHECK(*held == 20);

  // Claims race from 5 threads; Catch2 checks only on the main thread.
  std::mutex mu;
  std::vector<result<haven::wire::PrekeyBundle>> bundles;
  std::vector<std::thread> threads;
  for (int t = 0; t < 5; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 6; ++i) {
        auto b = wait_for<haven::wire::PrekeyBundle>(
            [&](auto done) { f.db->claim_prekeys(m, done); });
        std::lock_guard lock(mu);
        bundles.push_back(std::move(b));
      }
    });
  for (auto& t : threads) t.join();
  std::multiset<std::uint32_t> one_time;
  int last_resort = 0;
  for (const auto& b : bundles) {
    REQUIRE(b.has_value());
    const auto& d = b->devices(0);
    CHECK(d.signed_prekey().id() == 7);
    if (d.has_one_time()) one_time.insert(d.one_time().id());
    if (d.has_last_resort()) ++last_resort;
  }
  CHECK(one_time.size() == 20);
  CHECK(std::set<std::uint32_t>(one_time.begin(), one_time.end()).size() == 20);
  CHECK(last_resort == 10);
}

TEST_CASE("a prekey upload over the cap is refused whole", "[store]") {
  fixture f;
  f.opts.max_one_time_prekeys = 5;
  f.reopen();
  auto m = f.make_account();
  haven::wire::UploadPrekeysRequest up;
  for (std::uint32_t i = 1; i <= 6; ++i) up.add_one_time()->set_id(i);
  auto r = wait_for<std::uint32_t>([&](auto done) { f.db->upload_prekeys({m, 1}, up, done); });
  CHECK(r.error() == errc::too_many_prekeys);
}

TEST_CASE("organisation names are unique", "[store]") {
  fixture f;
  f.make_org("Northside");
  auto again = wait_for<OrgRecord>(
      [&](auto done) { f.db->create_org(filled<16>(9), "Northside", k_now, done); });
  CHECK(again.error() == errc::already_exists);
  CHECK(f.db->list_orgs()->size() == 1);
}

TEST_CASE("a second open of the same directory is refused as locked", "[store]") {
  fixture f;
  auto second = open_rocksdb_store(f.opts);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error() == errc::locked);
}

TEST_CASE("the server id is made once and kept", "[store]") {
  fixture f;
  auto id = f.db->server_id();
  f.reopen();
  CHECK(f.db->server_id() == id);
}

TEST_CASE("changes after close are refused, not lost silently", "[store]") {
  fixture f;
  auto m = f.make_account();
  f.db->close();
  CHECK(f.send(m, 1).error() == errc::shutting_down);
}

TEST_CASE("a vault opens with its verifier, and wrong tries destroy it at the limit", "[store][vault]") {
  fixture f;
  auto owner = f.make_account(1);
  const auto id = filled<16>(0x77);
  const auto good = filled<32>(0x11), bad = filled<32>(0x22);
  REQUIRE(wait_for<void>([&](auto done) {
    f.db->store_vault(owner, id, "header", good, "sealed vault", done);
  }));
  auto header = f.db->find_vault(id, 3);
  REQUIRE(header.has_value());
  CHECK(header->header == "header");
  CHECK(header->tries_left == 3);

  const auto open = [&](const verifier& v) {
    auto r = wait_for<vault_opening>([&](auto done) { f.db->open_vault(id, v, 3, done); });
    REQUIRE(r.has_value());
    return *r;
  };
  auto miss = open(bad);
  CHECK_FALSE(miss.opened);
  CHECK(miss.tries_left == 2);
  CHECK(miss.sealed.empty());
  auto hit = open(good);
  CHECK(hit.opened);
  CHECK(hit.sealed == "sealed vault");
  CHECK(f.db->find_vault(id, 3)->tries_left == 3);  // a success resets the count

  CHECK(open(bad).tries_left == 2);
  f.reopen();  // counted on disk
  CHECK(f.db->find_vault(id, 3)->tries_left == 2);
  CHECK(open(bad).tries_left == 1);
  auto last = open(bad);
  CHECK_FALSE(last.opened);
  CHECK(last.tries_left == 0);
  CHECK(f.db->find_vault(id, 3).error() == errc::not_found);
  auto gone = wait_for<vault_opening>([&](auto done) { f.db->open_vault(id, good, 3, done); });
  CHECK(gone.error() == errc::not_found);
}

TEST_CASE("only the owner can replace a vault", "[store][vault]") {
  fixture f;
  auto owner = f.make_account(1);
  auto other = f.make_account(2);
  const auto id = filled<16>(0x78);
  REQUIRE(wait_for<void>([&](auto done) {
    f.db->store_vault(owner, id, "h", filled<32>(1), "v1", done);
  }));
  auto stolen = wait_for<void>([&](auto done) {
    f.db->store_vault(other, id, "h", filled<32>(2), "mine now", done);
  });
  CHECK(stolen.error() == errc::not_owner);
  REQUIRE(wait_for<void>([&](auto done) {
    f.db->store_vault(owner, id, "h2", filled<32>(3), "v2", done);
  }));
  auto r = wait_for<vault_opening>([&](auto done) { f.db->open_vault(id, filled<32>(3), 10, done); });
  REQUIRE(r.has_value());
  CHECK(r->sealed == "v2");
}

TEST_CASE("a queue read stops at its byte budget but always returns one", "[store]") {
  fixture f;
  auto m = f.make_account();
  for (std::uint8_t i = 1; i <= 5; ++i) REQUIRE(f.send(m, i).has_value());
  const auto one = f.db->read_queue({m, 1}, 0, 10)->front().frame.size();
  CHECK(f.db->read_queue({m, 1}, 0, 10, 1)->size() == 1);
  CHECK(f.db->read_queue({m, 1}, 0, 10, 2 * one)->size() == 2);
  CHECK(f.db->read_queue({m, 1}, 0, 10, 2 * one + 1)->size() == 3);
  CHECK(f.db->read_queue({m, 1}, 0, 10)->size() == 5);
}
