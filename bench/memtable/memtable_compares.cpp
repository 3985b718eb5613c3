// memtable_compares: how many key comparisons a memtable insert costs in
// the write pattern of a group fan-out, on the RocksDB that havend links.
//
// Writes queue entries as havend's store does (its keys and group
// references, keys.hpp, and the same insert hint per device prefix): in each
// batch, --per-batch group messages reach every one of --devices devices,
// and (--acks) each device's entries of the batch before are deleted with
// SingleDelete. A comparator that counts its calls on the writing thread
// says how many comparisons each insert took. No WAL: only the memtable is
// measured.

#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "keys.hpp"  // havend's key layout (server/store/src)

namespace {

thread_local bool counting = false;
std::uint64_t comparisons = 0;  // on the writing thread only

// Bytewise order, counted: flushes and compactions on RocksDB's own
// threads are not.
class counting_comparator final : public rocksdb::Comparator {
 public:
  const char* Name() const override { return base_->Name(); }
  int Compare(const rocksdb::Slice& a, const rocksdb::Slice& b) const override {
    if (counting) ++comparisons;
    return base_->Compare(a, b);
  }
  void FindShortestSeparator(std::string* start, const rocksdb::Slice& limit) const override {
    base_->FindShortestSeparator(start, limit);
  }
  void FindShortSuccessor(std::string* key) const override { base_->FindShortSuccessor(key); }

 private:
  const rocksdb::Comparator* base_ = rocksdb::BytewiseComparator();
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t devices = 1000;
  std::size_t messages = 1000;
  std::size_t per_batch = 11;
  bool acks = true;
  bool hint = true;
  std::string directory = "memtable_compares.db";
  CLI::App app{"key comparisons per memtable insert in a group fan-out's write pattern"};
  app.add_option("--devices", devices, "devices each message reaches");
  app.add_option("--messages", messages, "group messages in all");
  app.add_option("--per-batch", per_batch, "group messages per write batch")
      ->check(CLI::PositiveNumber);
  app.add_option("--acks", acks, "delete each device's entries of the batch before (true/false)");
  app.add_option("--hint", hint,
                 "an insert hint per 20-byte device prefix, as havend (true/false)");
  app.add_option("--dir", directory, "scratch database directory (removed first)");
  CLI11_PARSE(app, argc, argv);

  counting_comparator comparator;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.comparator = &comparator;
  options.write_buffer_size = 16 << 20;  // as havend's queue family
  if (hint)
    options.memtable_insert_with_hint_prefix_extractor.reset(
        rocksdb::NewFixedPrefixTransform(haven::store::keys::queue_prefix_size));
  std::filesystem::remove_all(directory);
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::Open(options, directory, &raw); !s.ok()) {
    std::cerr << "memtable_compares: " << s.ToString() << "\n";
    return 1;
  }
  const std::unique_ptr<rocksdb::DB> db(raw);

  std::mt19937_64 random(1);
  std::vector<haven::store::device_address> addresses(devices);
  for (auto& address : addresses) {
    for (auto& byte : address.mailbox) byte = static_cast<std::uint8_t>(random());
    address.device = 1;
  }
  const auto key = [&](std::size_t device, std::uint64_t seq) {
    return haven::store::keys::queue_entry(addresses[device], seq);
  };
  const std::string reference = haven::store::keys::group_ref{}.encode();
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  std::uint64_t puts = 0;
  std::uint64_t deletes = 0;
  for (std::uint64_t first = 1; first <= messages; first += per_batch) {
    const auto end = std::min<std::uint64_t>(first + per_batch, messages + 1);
    rocksdb::WriteBatch batch;
    if (acks && first > per_batch) {
      for (std::size_t d = 0; d < devices; ++d)
        for (auto seq = first - per_batch; seq < first; ++seq, ++deletes)
          batch.SingleDelete(key(d, seq));
    }
    for (auto seq = first; seq < end; ++seq)
      for (std::size_t d = 0; d < devices; ++d, ++puts) batch.Put(key(d, seq), reference);
    counting = true;
    const auto s = db->Write(write_options, &batch);
    counting = false;
    if (!s.ok()) {
      std::cerr << "memtable_compares: " << s.ToString() << "\n";
      return 1;
    }
  }
  const auto inserts = puts + deletes;
  std::cout << "memtable_compares: " << puts << " puts and " << deletes << " single deletes, "
            << comparisons << " key comparisons on the writing thread, "
            << static_cast<double>(comparisons) / static_cast<double>(inserts) << " per insert\n";
  std::filesystem::remove_all(directory);
  return 0;
}
