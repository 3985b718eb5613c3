// A full disk under the store, made by a file system layer that refuses
// every write (ENOSPC) and reports no free space while it is "full": sends
// fail with no_space, reads go on, and the store writes again once space
// returns, losing nothing. tests/reliability/disk_full_test.cpp does the
// same to havend on a real tmpfs (and there RocksDB's own info log, which
// this layer does not reach, used to abort havend: see info_log.hpp).

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

class full_disk_fs : public rocksdb::FileSystemWrapper {
 public:
  explicit full_disk_fs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "FullDiskFS"; }

  std::atomic<bool> full{false};

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

  class refusing_file : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    refusing_file(std::unique_ptr<FSWritableFile> file, const std::atomic<bool>& full)
        : FSWritableFileOwnerWrapper(std::move(file)), full_(full) {}

    IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
      return full_ ? no_space() : target()->Append(data, options, dbg);
    }
    IOStatus Append(const Slice& data, const IOOptions& options,
                    const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
      return full_ ? no_space() : target()->Append(data, options, info, dbg);
    }
    IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                              IODebugContext* dbg) override {
      return full_ ? no_space() : target()->PositionedAppend(data, offset, options, dbg);
    }
    IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                              const rocksdb::DataVerificationInfo& info,
                              IODebugContext* dbg) override {
      return full_ ? no_space() : target()->PositionedAppend(data, offset, options, info, dbg);
    }
    IOStatus Allocate(std::uint64_t offset, std::uint64_t len, const IOOptions& options,
                      IODebugContext* dbg) override {
      return full_ ? no_space() : target()->Allocate(offset, len, options, dbg);
    }

   private:
    const std::atomic<bool>& full_;
  };

  IOStatus wrap(IOStatus s, std::unique_ptr<FSWritableFile>* file) {
    if (s.ok()) *file = std::make_unique<refusing_file>(std::move(*file), full);
    return s;
  }
};

}  // namespace

TEST_CASE("a full disk refuses sends with no_space, and the store writes again once space returns",
          "[store][disk]") {
  auto fs = std::make_shared<full_disk_fs>(rocksdb::FileSystem::Default());
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
