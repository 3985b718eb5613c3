// Power cut: what the disk holds if the machine stops at an arbitrary
// instant is every file cut back to the bytes that were synced. A file
// system layer under RocksDB tracks synced lengths and takes such snapshots
// while writers run; each snapshot must open cleanly and hold every
// envelope whose enqueue had completed before it was taken.
//
// Not modelled: a disk that acknowledges a flush it has not done (a lying
// write cache), torn sectors, and directory entries lost because the
// directory itself was not synced. Those need hardware or a dm-flakey
// device, which a test on a shared machine cannot set up.

#include <catch2/catch.hpp>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "haven/store/store.hpp"
#include "temp_dir.hpp"

using namespace haven::store;
using haven::test::temp_dir;
using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

namespace {

class power_cut_fs : public rocksdb::FileSystemWrapper {
 public:
  explicit power_cut_fs(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "PowerCutFS"; }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& options,
                           std::unique_ptr<FSWritableFile>* file, IODebugContext* dbg) override {
    std::lock_guard lock(mutex_);
    auto s = target()->NewWritableFile(name, options, file, dbg);
    if (s.ok()) track(name, 0, file);
    return s;
  }
  IOStatus ReopenWritableFile(const std::string& name, const FileOptions& options,
                              std::unique_ptr<FSWritableFile>* file,
                              IODebugContext* dbg) override {
    std::lock_guard lock(mutex_);
    auto s = target()->ReopenWritableFile(name, options, file, dbg);
    if (s.ok()) track(name, std::filesystem::file_size(name), file);
    return s;
  }
  IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                             const FileOptions& options, std::unique_ptr<FSWritableFile>* file,
                             IODebugContext* dbg) override {
    std::lock_guard lock(mutex_);
    auto s = target()->ReuseWritableFile(name, old_name, options, file, dbg);
    if (s.ok()) track(name, 0, file);
    return s;
  }
  IOStatus RenameFile(const std::string& from, const std::string& to, const IOOptions& options,
                      IODebugContext* dbg) override {
    std::lock_guard lock(mutex_);
    auto s = target()->RenameFile(from, to, options, dbg);
    if (s.ok() && synced_.contains(from)) {
      synced_[to] = synced_[from];
      synced_.erase(from);
    }
    return s;
  }
  IOStatus DeleteFile(const std::string& name, const IOOptions& options,
                      IODebugContext* dbg) override {
    std::lock_guard lock(mutex_);
    synced_.erase(name);
    return target()->DeleteFile(name, options, dbg);
  }

  // Copies `from` into `to` as a power cut now would leave it.
  void snapshot(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::lock_guard lock(mutex_);
    std::filesystem::create_directories(to);
    for (const auto& entry : std::filesystem::directory_iterator(from)) {
      const auto name = entry.path().string();
      auto length = entry.file_size();
      if (auto it = synced_.find(name); it != synced_.end()) length = it->second;
      std::ifstream in(entry.path(), std::ios::binary);
      std::string bytes(length, '\0');
      in.read(bytes.data(), static_cast<std::streamsize>(length));
      std::ofstream(to / entry.path().filename(), std::ios::binary) << bytes;
    }
  }

 private:
  // Appends and syncs go through here, under the same lock as snapshots.
  class tracked_file : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    tracked_file(std::unique_ptr<FSWritableFile> file, power_cut_fs& fs, std::string name,
                 std::uint64_t size)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), name_(std::move(name)),
          size_(size) {}

    IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
      std::lock_guard lock(fs_.mutex_);
      auto s = target()->Append(data, options, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    IOStatus Append(const Slice& data, const IOOptions& options,
                    const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
      std::lock_guard lock(fs_.mutex_);
      auto s = target()->Append(data, options, info, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    IOStatus Truncate(std::uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
      std::lock_guard lock(fs_.mutex_);
      auto s = target()->Truncate(size, options, dbg);
      if (s.ok()) {
        size_ = size;
        auto& synced = fs_.synced_[name_];
        synced = std::min(synced, size);
      }
      return s;
    }
    IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
      const auto covered = appended();
      return synced(covered, target()->Sync(options, dbg));
    }
    IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
      const auto covered = appended();
      return synced(covered, target()->Fsync(options, dbg));
    }
    // RangeSync (sync_file_range) promises nothing across a power cut.

   private:
    // A sync promises only the bytes appended before it began, should
    // another thread append while it runs.
    std::uint64_t appended() {
      std::lock_guard lock(fs_.mutex_);
      return size_;
    }
    IOStatus synced(std::uint64_t covered, IOStatus s) {
      std::lock_guard lock(fs_.mutex_);
      auto& synced = fs_.synced_[name_];
      if (s.ok()) synced = std::max(synced, std::min(covered, size_));
      return s;
    }
    power_cut_fs& fs_;
    std::string name_;
    std::uint64_t size_;
  };

  void track(const std::string& name, std::uint64_t size, std::unique_ptr<FSWritableFile>* file) {
    synced_[name] = size;
    *file = std::make_unique<tracked_file>(std::move(*file), *this, name, size);
  }

  std::mutex mutex_;
  std::map<std::string, std::uint64_t> synced_;  // file -> bytes that survive a power cut
};

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t v) {
  std::array<std::uint8_t, N> a{};
  a.fill(v);
  return a;
}

envelope_id id_of(std::uint32_t n) {
  envelope_id id{};
  for (std::size_t i = 0; i < 4; ++i) id[i] = static_cast<std::uint8_t>(n >> (8 * i));
  return id;
}

mailbox_id make_account(store& db) {
  const auto org = filled<16>(1);
  const auto invite = filled<32>(2);
  REQUIRE(wait_for<OrgRecord>([&](auto done) { db.create_org(org, "Org", 1, done); }));
  REQUIRE(wait_for<void>([&](auto done) {
    db.create_invite(invite, {org, haven::wire::ROLE_SURVIVOR, 0}, 1, done);
  }));
  new_account account;
  account.mailbox = filled<16>(3);
  REQUIRE(wait_for<AccountRecord>(
      [&](auto done) { db.register_account(invite, account, done); }));
  return account.mailbox;
}

}  // namespace

TEST_CASE("a power cut at any instant keeps every completed enqueue", "[store][power]") {
  temp_dir dir("haven-powercut");
  auto fs = std::make_shared<power_cut_fs>(rocksdb::FileSystem::Default());
  auto env = rocksdb::NewCompositeEnv(fs);
  options opts;
  opts.directory = dir.path() / "db";
  opts.max_queue_per_device = 1'000'000;
  opts.env = env.get();
  auto db = std::move(open_rocksdb_store(opts).value());
  const auto mailbox = make_account(*db);
  const device_address device{mailbox, 1};

  // Writers enqueue concurrently, so batches group several requests.
  std::mutex mutex;
  std::set<std::uint32_t> completed;
  std::atomic<std::uint32_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&] {
      while (!stop) {
        const auto n = next++;
        auto r = wait_for<std::vector<stored_envelope>>([&](auto done) {
          db->enqueue(mailbox, id_of(n), {{1, "envelope " + std::to_string(n)}}, 1, done);
        });
        if (!r) {
          ++failed;  // Catch2 assertions are for the main thread only
          continue;
        }
        std::lock_guard lock(mutex);
        completed.insert(n);
      }
    });

  // Cut the power (in copy) at several instants while they write.
  struct cut {
    std::filesystem::path directory;
    std::set<std::uint32_t> completed_before;
  };
  std::vector<cut> cuts;
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 15 * i));
    cut c{dir.path() / ("cut-" + std::to_string(i)), {}};
    {
      std::lock_guard lock(mutex);
      c.completed_before = completed;  // completed, so synced, before the cut
    }
    fs->snapshot(opts.directory, c.directory);
    cuts.push_back(std::move(c));
  }
  stop = true;
  for (auto& t : writers) t.join();
  db->close();
  REQUIRE(failed == 0);

  std::size_t verified = 0, beyond = 0;
  for (const auto& c : cuts) {
    INFO("cut " << c.directory.filename().string());
    options reopened;
    reopened.directory = c.directory;
    reopened.max_queue_per_device = 1'000'000;
    auto restored = open_rocksdb_store(reopened);
    REQUIRE(restored.has_value());
    auto queue = (*restored)->read_queue(device, 0, 10'000'000);
    REQUIRE(queue.has_value());
    std::set<std::uint32_t> found;
    std::uint64_t last_seq = 0;
    for (const auto& q : *queue) {
      haven::wire::Envelopes frame;
      REQUIRE(frame.ParseFromString(q.frame.bytes()));
      REQUIRE(frame.envelopes_size() == 1);
      const auto& e = frame.envelopes(0);
      CHECK(q.seq > last_seq);
      last_seq = q.seq;
      std::uint32_t n = 0;
      for (std::size_t i = 0; i < 4; ++i)
        n |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(e.envelope_id()[i])) << (8 * i);
      CHECK(e.sealed() == "envelope " + std::to_string(n));
      CHECK(found.insert(n).second);  // stored once
    }
    std::size_t lost = 0;
    for (auto n : c.completed_before) lost += found.contains(n) ? 0 : 1;
    CHECK(lost == 0);
    verified += c.completed_before.size();
    if (found.size() > c.completed_before.size()) beyond += found.size() - c.completed_before.size();
    // The restored queue carries on numbering after what it holds.
    auto more = wait_for<std::vector<stored_envelope>>([&](auto done) {
      (*restored)->enqueue(mailbox, id_of(0xffffff), {{1, "after"}}, 2, done);
    });
    REQUIRE(more.has_value());
    CHECK(more->front().envelope.seq > last_seq);
  }
  WARN(cuts.size() << " power cuts, " << verified
                   << " completed enqueues checked (all present), " << beyond
                   << " more found that had not yet been acknowledged");
  CHECK(verified > 500);
}
