// A failing disk under the store, made by a file system layer that refuses
// writes. A full disk (ENOSPC, no free space reported): sends fail with
// no_space, reads go on, and the store writes again once space returns,
// losing nothing. tests/reliability/disk_full_test.cpp does the same to
// havend on a real tmpfs (and there RocksDB's own info log, which this
// layer does not reach, used to abort havend: see info_log.hpp). An I/O
// error in the write-ahead log: RocksDB stops writing until reopened, and
// the store says so once (options::on_unrecoverable).

#include <catch2/catch.hpp>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <set>
#include <thread>

#include "store_fixture.hpp"

using namespace haven::store;
using namespace haven::store::test;
using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

namespace {

class failing_fs : public rocksdb::FileSystemWrapper {
 public:
  explicit failing_fs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "FailingFS"; }

  std::atomic<bool> full{false};    // ENOSPC, and no free space reported
  std::atomic<bool> broken{false};  // EIO on every append

  // What RocksDB's SstFileManager polls before it resumes by itself.
  IOStatus GetFreeSpace(const std::string& path, const IOOptions& options, std::uint64_t* free,
                        IODebugContext* dbg) override {
    if (!full) return target()->GetFreeSpace(path, options, free, dbg);
    *free = 0;
    return IOStatus::OK();
  }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& options,
                           std::unique_ptr<FSWritableFile>* file, IODebugContext* dbg) override {
    if (full) return no_space();
    return wrap(target()->NewWritableFile(name, options, file, dbg), file);
  }
  IOStatus ReopenWritableFile(const std::string& name, const FileOptions& options,
                              std::unique_ptr<FSWritableFile>* file,
                              IODebugContext* dbg) override {
    if (full) return no_space();
    return wrap(target()->ReopenWritableFile(name, options, file, dbg), file);
  }
  IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                             const FileOptions& options, std::unique_ptr<FSWritableFile>* file,
                             IODebugContext* dbg) override {
    if (full) return no_space();
    return wrap(target()->ReuseWritableFile(name, old_name, options, file, dbg), file);
  }

 private:
  static IOStatus no_space() { return IOStatus::NoSpace("No space left on device (test)"); }

  // Why an append is refused now; OK if it is not.
  IOStatus refusal() const {
    if (full) return no_space();
    if (broken) return IOStatus::IOError("Input/output error (test)");
    return IOStatus::OK();
  }

  class refusing_file : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    refusing_file(std::unique_ptr<FSWritableFile> file, const failing_fs& fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}

    IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
      auto r = fs_.refusal();
      return r.ok() ? target()->Append(data, options, dbg) : r;
    }
    IOStatus Append(const Slice& data, const IOOptions& options,
                    const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
      auto r = fs_.refusal();
      return r.ok() ? target()->Append(data, options, info, dbg) : r;
    }
    IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                              IODebugContext* dbg) override {
      auto r = fs_.refusal();
      return r.ok() ? target()->PositionedAppend(data, offset, options, dbg) : r;
    }
    IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                              const rocksdb::DataVerificationInfo& info,
                              IODebugContext* dbg) override {
      auto r = fs_.refusal();
      return r.ok() ? target()->PositionedAppend(data, offset, options, info, dbg) : r;
    }
    IOStatus Allocate(std::uint64_t offset, std::uint64_t len, const IOOptions& options,
                      IODebugContext* dbg) override {
      auto r = fs_.refusal();
      return r.ok() ? target()->Allocate(offset, len, options, dbg) : r;
    }

   private:
    const failing_fs& fs_;
  };

  IOStatus wrap(IOStatus s, std::unique_ptr<FSWritableFile>* file) {
    if (s.ok()) *file = std::make_unique<refusing_file>(std::move(*file), *this);
    return s;
  }
};

}  // namespace

TEST_CASE("a full disk refuses sends with no_space, and the store writes again once space returns",
          "[store][disk]") {
  auto fs = std::make_shared<failing_fs>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);  // outlives the store below
  fixture f;
  f.opts.env = env.get();
  f.reopen();
  const auto recipient = f.make_account(1);
  const device_address device{recipient, 1};

  std::set<std::uint8_t> acked;
  std::uint8_t tag = 0;  // an envelope id; fewer than 256 are sent
  for (int i = 0; i < 20; ++i, ++tag) {
    REQUIRE(f.send(recipient, tag).has_value());
    acked.insert(tag);
  }

  fs->full = true;
  for (int i = 0; i < 50; ++i, ++tag) {
    const auto r = f.send(recipient, tag);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::no_space));
  }
  // Reading needs no space: a client can still drain its queue.
  auto queue = f.db->read_queue(device, 0, 1000);
  REQUIRE(queue.has_value());
  CHECK(queue->size() == acked.size());

  // Space returns: RocksDB's SstFileManager sees it on its next poll (every
  // few seconds) and resumes; until then sends are refused as before.
  fs->full = false;
  int tries = 0;
  for (;; ++tries) {
    const auto r = f.send(recipient, tag);
    if (r.has_value()) break;
    REQUIRE(r.error() == make_error_code(errc::no_space));
    REQUIRE(tries < 150);
    ++tag;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  acked.insert(tag++);
  for (int i = 0; i < 20; ++i, ++tag) {
    REQUIRE(f.send(recipient, tag).has_value());
    acked.insert(tag);
  }
  WARN("the store wrote again after " << tries << " refused tries once space returned");

  // Every acknowledged envelope is there once, before and after a restart;
  // a refused one never is (its batch never reached the memtable).
  for (int pass = 0; pass < 2; ++pass) {
    INFO((pass == 0 ? "before" : "after") << " a restart");
    auto after = f.db->read_queue(device, 0, 1000);
    REQUIRE(after.has_value());
    std::multiset<std::uint8_t> found;
    for (const auto& q : *after) {
      const auto e = envelope_of(q);
      const auto t = static_cast<std::uint8_t>(e.envelope_id()[0]);
      found.insert(t);
      CHECK(e.sealed() == "sealed-" + std::to_string(t));
    }
    CHECK(found == std::multiset<std::uint8_t>(acked.begin(), acked.end()));
    f.reopen();
  }
}

TEST_CASE("an I/O error in the write-ahead log stops writes until a reopen, and is told once",
          "[store][disk]") {
  auto fs = std::make_shared<failing_fs>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  fixture f;
  std::atomic<int> told{0};
  f.opts.env = env.get();
  f.opts.on_unrecoverable = [&] { ++told; };
  f.reopen();
  const auto recipient = f.make_account(1);
  const device_address device{recipient, 1};

  std::uint8_t tag = 0;
  for (; tag < 10; ++tag) REQUIRE(f.send(recipient, tag).has_value());
  CHECK(told == 0);

  fs->broken = true;
  const auto failed = f.send(recipient, tag++);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error() == make_error_code(errc::io_error));
  fs->broken = false;
  // The disk works again, but RocksDB writes no more until reopened.
  for (int i = 0; i < 10; ++i) {
    const auto r = f.send(recipient, tag++);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == make_error_code(errc::io_error));
  }
  CHECK(told == 1);
  auto queue = f.db->read_queue(device, 0, 1000);
  REQUIRE(queue.has_value());
  CHECK(queue->size() == 10);

  // Reopened, as a restarted havend: the ten acknowledged are there, the
  // refused ones are not, and sends work again.
  f.reopen();
  queue = f.db->read_queue(device, 0, 1000);
  REQUIRE(queue.has_value());
  REQUIRE(queue->size() == 10);
  for (std::uint8_t i = 0; i < 10; ++i)
    CHECK(static_cast<std::uint8_t>(envelope_of((*queue)[i]).envelope_id()[0]) == i);
  CHECK(f.send(recipient, tag).has_value());
  CHECK(told == 1);
}
