#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "flat_table.hpp"
#include "haven/store/store.hpp"
#include "info_log.hpp"
#include "keys.hpp"

namespace haven::store {
namespace {

class store_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "haven.store"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_found: return "not found";
      case errc::already_exists: return "already exists";
      case errc::invalid_invite: return "invalid invite";
      case errc::unknown_device: return "unknown device";
      case errc::queue_full: return "queue full";
      case errc::too_many_prekeys: return "too many prekeys";
      case errc::no_space: return "no space left on the data directory's disk";
      case errc::io_error: return "storage input/output error";
      case errc::corrupt: return "corrupt record";
      case errc::shutting_down: return "store is shutting down";
      case errc::locked: return "data directory is in use by another process";
      case errc::not_owner: return "the vault belongs to another mailbox";
      case errc::not_member: return "no such group, or not permitted in it";
      case errc::group_full: return "the group is full";
    }
    return "unknown store error";
  }
};

std::error_code to_error(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return errc::no_space;
  if (s.IsNotFound()) return errc::not_found;
  if (s.IsCorruption()) return errc::corrupt;
  return errc::io_error;
}

constexpr const char* k_server_id_key = "server_id";
// The writer's account cache starts over beyond this many (a few MB).
constexpr std::size_t k_cached_accounts = 16'384;
constexpr std::size_t k_cached_access_keys = 65'536;  // about 5 MiB
constexpr std::size_t k_cached_body_refs = 65'536;     // about 5 MiB
constexpr std::size_t k_cached_entries = 65'536;       // 12 MiB of slots (flat_table)
// Group records: members held at most (about 100 bytes each, 25 MiB).
constexpr std::size_t k_cached_group_members = 262'144;

// RocksDB counts every key comparison and skipped key in a thread-local
// context unless the thread says not to: 4 % of havend's CPU in a group
// fan-out, for counts nothing here reads. Called by the threads that use
// the database most: the writer, and those that read queues.
void no_perf_counts() {
  thread_local const bool off = [] {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    return true;
  }();
  (void)off;
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(std::string_view s) {
  std::array<std::uint8_t, N> out{};
  if (s.size() == N) std::copy(s.begin(), s.end(), out.begin());
  return out;
}

std::int64_t round_down(std::int64_t t, std::int64_t unit) { return t - (t % unit); }

// The column families, in the order they are opened.
enum family : std::size_t {
  f_default, f_accounts, f_prekeys, f_queue, f_orgs, f_invites, f_vault, f_groups, f_bodies,
  f_count
};
constexpr std::array<const char*, f_count> k_family_names = {
    "default", "accounts", "prekeys", "queue", "orgs", "invites", "vault", "groups", "bodies"};

// Writes `v` as a protobuf varint (at most 10 bytes) at `out`; returns its end.
char* write_varint(char* out, std::uint64_t v) {
  for (; v >= 0x80; v >>= 7) *out++ = static_cast<char>(v | 0x80);
  *out++ = static_cast<char>(v);
  return out;
}

constexpr std::uint64_t length_delimited(int field_number) {
  return (static_cast<std::uint64_t>(field_number) << 3) | 2;
}

// Queue entries written before Envelopes existed are ServerFrames with the
// envelope in field 18: the same bytes.
static_assert(wire::Envelopes::kEnvelopesFieldNumber == 18);

// The head of a group envelope's push frame: Envelopes{envelopes{seq,
// envelope_id, received_at, sealed}} up to the sealed bytes, which follow
// as the shared body. Protobuf parsers take fields in any order, so
// sealed may come last. Written by hand, as protobuf would (zero scalars
// left out), straight into the head: a fan-out makes one per member, and
// through a wire::Envelope each took three more allocations.
std::shared_ptr<const std::string> group_push_head(std::uint64_t seq, const keys::group_ref& ref,
                                                   std::size_t body_size) {
  std::array<char, 64> fields;  // tags and varints: at most 1 + 10, 2 + 16, 1 + 10, 1 + 10
  char* end = fields.data();
  if (seq != 0) {
    end = write_varint(end, wire::Envelope::kSeqFieldNumber << 3);
    end = write_varint(end, seq);
  }
  end = write_varint(end, length_delimited(wire::Envelope::kEnvelopeIdFieldNumber));
  end = write_varint(end, ref.envelope.size());
  end = std::ranges::copy(keys::view(ref.envelope), end).out;
  if (ref.received_at != 0) {
    end = write_varint(end, wire::Envelope::kReceivedAtFieldNumber << 3);
    end = write_varint(end, static_cast<std::uint64_t>(ref.received_at));
  }
  end = write_varint(end, length_delimited(wire::Envelope::kSealedFieldNumber));
  end = write_varint(end, body_size);
  const auto size = static_cast<std::size_t>(end - fields.data());
  std::array<char, 12> outer;  // Envelopes.envelopes' tag and length
  char* outer_end = write_varint(
      write_varint(outer.data(), length_delimited(wire::Envelopes::kEnvelopesFieldNumber)),
      size + body_size);
  auto head = std::make_shared<std::string>();
  head->reserve(static_cast<std::size_t>(outer_end - outer.data()) + size);
  head->append(outer.data(), outer_end).append(fields.data(), size);
  return head;
}

bool is_member(const GroupRecord& group, std::string_view mailbox, bool facilitator = false) {
  return std::ranges::any_of(group.members(), [&](const GroupMember& m) {
    return m.mailbox_id() == mailbox && (m.facilitator() || !facilitator);
  });
}

// Constant-time equality of two verifiers (hashes), so timing does not
// tell how many leading bytes of a guess were right.
bool same_verifier(std::string_view a, const verifier& b) {
  if (a.size() != b.size()) return false;
  std::uint8_t diff = 0;
  for (std::size_t i = 0; i < b.size(); ++i) diff |= static_cast<std::uint8_t>(a[i]) ^ b[i];
  return diff == 0;
}

// What a request sees while it is prepared on the writer thread: committed
// state plus the earlier requests of the same batch.
struct write_context {
  rocksdb::DB* db;
  rocksdb::WriteBatchWithIndex& batch;
  std::array<rocksdb::ColumnFamilyHandle*, f_count>& cf;

  rocksdb::Status get(family f, std::string_view key, std::string* value) {
    return batch.GetFromBatchAndDB(db, rocksdb::ReadOptions(), cf[f], key, value);
  }
  // Many keys of one family in one MultiGet (keys that share data blocks
  // share their lookups); each value stays pinned while `values` lives.
  void get_many(family f, const std::vector<std::string>& keys,
                std::vector<rocksdb::PinnableSlice>& values,
                std::vector<rocksdb::Status>& statuses) {
    const std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    values = std::vector<rocksdb::PinnableSlice>(keys.size());
    statuses.assign(keys.size(), rocksdb::Status());
    batch.MultiGetFromBatchAndDB(db, rocksdb::ReadOptions(), cf[f], slices.size(), slices.data(),
                                 values.data(), statuses.data(), false);
  }
  // The record at `key` parsed as T; `missing` when there is none.
  template <typename T>
  result<T> record(family f, std::string_view key, errc missing = errc::not_found) {
    std::string value;
    auto s = get(f, key, &value);
    if (s.IsNotFound()) return std::unexpected(make_error_code(missing));
    if (!s.ok()) return std::unexpected(to_error(s));
    T out;
    if (!out.ParseFromString(value)) return std::unexpected(make_error_code(errc::corrupt));
    return out;
  }
  void put(family f, std::string_view key, std::string_view value) { batch.Put(cf[f], key, value); }
  // A put that skips the batch's index, so get, get_many and scan do not
  // see it: for writes that later requests of the batch all but never read
  // (the store keeps its own account of those: stored_entries_). The
  // index's upkeep (each put first looks for an earlier write of its key)
  // was a quarter of the writer's time in a group fan-out. A rollback
  // re-indexes it with the rest.
  void put_unread(family f, std::string_view key, std::string_view value) {
    batch.GetWriteBatch()->Put(cf[f], key, value);
  }
  void del(family f, std::string_view key) { batch.Delete(cf[f], key); }
  // A delete of a key that was put exactly once, skipping the index as
  // put_unread does: a flush drops the pair instead of keeping a tombstone.
  void single_delete_unread(family f, std::string_view key) {
    batch.GetWriteBatch()->SingleDelete(cf[f], key);
  }
  // Keys and values under `prefix`, batch included.
  std::vector<std::pair<std::string, std::string>> scan(family f, std::string_view prefix,
                                                       std::size_t limit) {
    std::vector<std::pair<std::string, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it(
        batch.NewIteratorWithBase(cf[f], db->NewIterator(rocksdb::ReadOptions(), cf[f])));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
         it->Next())
      out.emplace_back(it->key().ToString(), it->value().ToString());
    return out;
  }
};

class rocksdb_store final : public store {
 public:
  rocksdb_store(const options& opts, rocksdb::DB* db,
                std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : options_(opts), db_(db) {
    std::copy(handles.begin(), handles.end(), cf_.begin());
  }

  ~rocksdb_store() override { close(); }

  result<void> start() {
    std::string id;
    auto s = db_->Get(rocksdb::ReadOptions(), cf_[f_default], k_server_id_key, &id);
    if (s.IsNotFound()) {
      std::random_device rd;  // an identifier, not a secret
      id.resize(server_id_.size());
      for (auto& c : id) c = static_cast<char>(rd() & 0xff);
      rocksdb::WriteOptions wo;
      wo.sync = true;
      s = db_->Put(wo, cf_[f_default], k_server_id_key, id);
    }
    if (!s.ok()) return std::unexpected(to_error(s));
    if (id.size() != server_id_.size()) return std::unexpected(make_error_code(errc::corrupt));
    server_id_ = to_array<16>(id);
    writer_ = std::thread([this] { writer_loop(); });
    syncer_ = std::thread([this] { syncer_loop(); });
    return {};
  }

  // ---- reads

  result<AccountRecord> find_account(const mailbox_id& mailbox) override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), cf_[f_accounts], keys::account(mailbox), &value);
    if (!s.ok()) return std::unexpected(to_error(s));
    AccountRecord record;
    if (!record.ParseFromString(value)) return std::unexpected(make_error_code(errc::corrupt));
    return record;
  }

  result<std::array<std::uint8_t, 32>> find_access_key_hash(const mailbox_id& mailbox) override {
    {
      std::lock_guard lock(access_keys_mutex_);
      if (auto it = access_keys_.find(mailbox); it != access_keys_.end()) return it->second;
    }
    // Unknown mailboxes are not cached: they may register later.
    auto account = find_account(mailbox);
    if (!account) return std::unexpected(account.error());
    if (account->access_key_hash().size() != 32)
      return std::unexpected(make_error_code(errc::corrupt));
    const auto hash = to_array<32>(account->access_key_hash());
    std::lock_guard lock(access_keys_mutex_);
    if (access_keys_.size() >= k_cached_access_keys) access_keys_.clear();
    access_keys_.emplace(mailbox, hash);
    return hash;
  }

  result<std::vector<queued_envelope>> read_queue(const device_address& device,
                                                  std::uint64_t after_seq, std::size_t limit,
                                                  std::size_t max_bytes) override {
    no_perf_counts();
    std::vector<queued_envelope> out;
    std::size_t bytes = 0;
    const std::string prefix = keys::queue_prefix(device);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[f_queue]));
    for (it->Seek(keys::queue_entry(device, after_seq + 1));
         it->Valid() && it->key().starts_with(prefix) && out.size() < limit && bytes < max_bytes;
         it->Next()) {
      if (it->key().size() != keys::queue_key_size) continue;
      const auto seq = keys::get_be(it->key().ToStringView(), keys::queue_prefix_size, 8);
      auto frame = push_frame_of(seq, it->value().ToStringView());
      if (!frame) return std::unexpected(frame.error());
      bytes += frame->size();
      out.push_back({seq, std::move(*frame)});
    }
    if (!it->status().ok()) return std::unexpected(to_error(it->status()));
    return out;
  }

  const std::array<std::uint8_t, 16>& server_id() const noexcept override { return server_id_; }

  result<std::vector<OrgRecord>> list_orgs() override {
    std::vector<OrgRecord> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_[f_orgs]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      OrgRecord org;
      if (!org.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return std::unexpected(make_error_code(errc::corrupt));
      out.push_back(std::move(org));
    }
    if (!it->status().ok()) return std::unexpected(to_error(it->status()));
    return out;
  }

  result<vault_header_info> find_vault(const vault_id& id, std::uint32_t max_failures) override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), cf_[f_vault], keys::view(id), &value);
    if (!s.ok()) return std::unexpected(to_error(s));
    VaultRecord record;
    if (!record.ParseFromString(value)) return std::unexpected(make_error_code(errc::corrupt));
    return vault_header_info{record.header(),
                             record.failures() >= max_failures ? 0 : max_failures - record.failures()};
  }

  // ---- changes

  void store_vault(const mailbox_id& owner, const vault_id& id, std::string header,
                   const verifier& auth_verifier, std::string sealed,
                   completion<void> done) override {
    submit(std::move(done), [=, this, header = std::move(header),
                             sealed = std::move(sealed)](write_context& ctx) -> result<void> {
      auto existing = ctx.record<VaultRecord>(f_vault, keys::view(id));
      if (existing && existing->mailbox_id() != keys::view(owner))
        return std::unexpected(make_error_code(errc::not_owner));
      if (!existing && existing.error() != errc::not_found)
        return std::unexpected(existing.error());
      VaultRecord record;
      record.set_mailbox_id(keys::bytes(owner));
      record.set_header(header);
      record.set_auth_verifier(keys::bytes(auth_verifier));
      record.set_sealed(sealed);
      ctx.put(f_vault, keys::view(id), record.SerializeAsString());
      return {};
    });
  }

  void open_vault(const vault_id& id, const verifier& presented, std::uint32_t max_failures,
                  completion<vault_opening> done) override {
    // Durable: a wrong try must be counted on disk before it is answered,
    // or a crash would hand the guesser more tries.
    submit(std::move(done), [=](write_context& ctx) -> result<vault_opening> {
      auto found = ctx.record<VaultRecord>(f_vault, keys::view(id));
      if (!found) return std::unexpected(found.error());
      auto& record = *found;
      vault_opening out;
      if (same_verifier(record.auth_verifier(), presented) && record.failures() < max_failures) {
        out.opened = true;
        out.sealed = record.sealed();
        out.tries_left = max_failures;
        if (record.failures() != 0) {
          record.set_failures(0);
          ctx.put(f_vault, keys::view(id), record.SerializeAsString());
        }
        return out;
      }
      record.set_failures(record.failures() + 1);
      if (record.failures() >= max_failures) {
        ctx.del(f_vault, keys::view(id));  // destroyed: nobody can open it now
      } else {
        out.tries_left = max_failures - record.failures();
        ctx.put(f_vault, keys::view(id), record.SerializeAsString());
      }
      return out;
    });
  }

  void enqueue(const mailbox_id& mailbox, const envelope_id& id,
               std::vector<device_envelope> envelopes, std::int64_t received_at,
               completion<std::vector<stored_envelope>> done, written_hook written) override {
    submit(std::move(done), [=, this, envelopes = std::move(envelopes)](
                                write_context& ctx) -> result<std::vector<stored_envelope>> {
      auto account = account_in(ctx, mailbox);
      if (!account) return std::unexpected(account.error());
      // Check everything before touching the batch or the counters.
      for (const auto& e : envelopes) {
        const bool known = std::ranges::any_of(
            (*account)->devices(), [&](const auto& d) { return d.device_id() == e.device; });
        if (!known) return std::unexpected(make_error_code(errc::unknown_device));
        auto counter = load_counter(ctx, {mailbox, e.device});
        if (!counter) return std::unexpected(counter.error());
        if ((*counter)->count >= options_.max_queue_per_device)
          return std::unexpected(make_error_code(errc::queue_full));
      }
      std::vector<stored_envelope> stored;
      stored.reserve(envelopes.size());
      wire::Envelopes frame;
      auto* body = frame.add_envelopes();
      body->set_envelope_id(keys::bytes(id));
      body->set_received_at(round_down(received_at, 60));
      for (const auto& e : envelopes) {
        const device_address address{mailbox, e.device};
        const auto seq = take_seq(address, **load_counter(ctx, address));
        body->set_seq(seq);
        body->set_sealed(e.sealed);
        auto bytes = std::make_shared<std::string>();
        frame.SerializeToString(bytes.get());
        const auto key = keys::queue_entry(address, seq);
        ctx.put_unread(f_queue, key, *bytes);
        stored_entries_.emplace_back(entry_key_of(key),
                                     entry_facts{id, body->received_at(), std::nullopt});
        stored.push_back({address, {seq, {std::move(bytes), nullptr}}});
      }
      return stored;
    }, true, on_written(std::move(written)));
  }

  void ack(const device_address& device, std::vector<delivered_envelope> envelopes,
           completion<std::vector<std::uint64_t>> done) override {
    submit(std::move(done), [=, this, envelopes = std::move(envelopes)](
                                write_context& ctx) -> result<std::vector<std::uint64_t>> {
      auto counter = load_counter(ctx, device);
      if (!counter) return std::unexpected(counter.error());
      // Every entry is read before any is deleted; a refusal midway is taken
      // back with the rest of the job (end_job).
      std::vector<std::string> entry_keys;
      entry_keys.reserve(envelopes.size());
      for (const auto& e : envelopes) entry_keys.push_back(keys::queue_entry(device, e.seq));
      auto stored = entries_at(ctx, **counter, entry_keys);
      if (!stored) return std::unexpected(stored.error());
      std::vector<std::uint64_t> not_found;
      bool removed_any = false;
      for (std::size_t i = 0; i < envelopes.size(); ++i) {
        const auto& facts = (*stored)[i];
        // A seq named twice finds its entry deleted the second time.
        if (!facts || facts->id != envelopes[i].id ||
            deleted_entries_.contains(entry_key_of(entry_keys[i]))) {
          not_found.push_back(envelopes[i].seq);
          continue;
        }
        if (auto removed = remove_entry(ctx, **counter, entry_keys[i], *facts); !removed)
          return std::unexpected(removed.error());
        removed_any = true;
      }
      if (removed_any) counter_changed(device, **counter);
      return not_found;
    }, false);
  }

  void enqueue_group(const group_id& group, const device_address& from, const envelope_id& id,
                     std::string sealed, std::int64_t received_at,
                     completion<std::vector<stored_envelope>> done,
                     written_hook written) override {
    submit(std::move(done), [=, this, sealed = std::move(sealed)](
                                write_context& ctx) mutable -> result<std::vector<stored_envelope>> {
      auto record = cached_group(ctx, group);
      if (!record) return std::unexpected(record.error());
      if (!is_member(**record, keys::view(from.mailbox)))
        return std::unexpected(make_error_code(errc::not_member));
      std::string value;
      auto s = ctx.get(f_bodies, keys::view(group), &value);
      if (!s.ok() && !s.IsNotFound()) return std::unexpected(to_error(s));
      if (s.ok() && value.size() != 8) return std::unexpected(make_error_code(errc::corrupt));
      const keys::group_ref ref{group, s.ok() ? keys::get_be(value, 0, 8) + 1 : 1, id,
                                round_down(received_at, 60)};
      const auto ref_value = ref.encode();
      auto body = std::make_shared<const std::string>(std::move(sealed));
      const entry_facts facts{id, ref.received_at, body_id{group, ref.body_seq}};
      std::vector<stored_envelope> stored;
      for (const auto& member : (*record)->members()) {
        const auto mailbox = to_array<16>(member.mailbox_id());
        auto account = account_in(ctx, mailbox);
        if (!account) return std::unexpected(account.error());
        for (const auto& d : (*account)->devices()) {
          const device_address address{mailbox, d.device_id()};
          if (address == from) continue;
          auto counter = load_counter(ctx, address);
          if (!counter) return std::unexpected(counter.error());
          if ((*counter)->count >= options_.max_queue_per_device) continue;
          const auto seq = take_seq(address, **counter);
          const auto key = keys::queue_entry(address, seq);
          ctx.put_unread(f_queue, key, ref_value);
          stored_entries_.emplace_back(entry_key_of(key), facts);
          stored.push_back({address, {seq, {group_push_head(seq, ref, body->size()), body}}});
        }
      }
      if (stored.empty()) return stored;  // nobody to deliver to: store nothing
      std::string next;
      keys::put_be(next, ref.body_seq, 8);
      ctx.put(f_bodies, keys::view(group), next);
      ctx.put(f_bodies, keys::body(group, ref.body_seq), *body);
      const body_id body_of{group, ref.body_seq};
      auto& refs = *touched(body_refs_[body_of], undo_.refs);
      refs.left = stored.size();
      refs_changed(body_of, refs);
      return stored;
    }, true, on_written(std::move(written)));
  }

  void create_group(const group_id& group, const mailbox_id& creator, std::int64_t now,
                    completion<std::uint32_t> done) override {
    submit(std::move(done), [=](write_context& ctx) -> result<std::uint32_t> {
      std::string ignored;
      auto s = ctx.get(f_groups, keys::view(group), &ignored);
      if (s.ok()) return std::unexpected(make_error_code(errc::already_exists));
      if (!s.IsNotFound()) return std::unexpected(to_error(s));
      GroupRecord record;
      record.set_group_id(keys::bytes(group));
      record.set_created_at(round_down(now, 86'400));
      auto* member = record.add_members();
      member->set_mailbox_id(keys::bytes(creator));
      member->set_facilitator(true);
      ctx.put(f_groups, keys::view(group), record.SerializeAsString());
      return 1U;
    });
  }

  void update_group(const group_id& group, const mailbox_id& by, std::vector<member_change> add,
                    std::vector<mailbox_id> remove, completion<std::uint32_t> done) override {
    submit(std::move(done), [=, this, add = std::move(add), remove = std::move(remove)](
                                write_context& ctx) -> result<std::uint32_t> {
      auto record = group_in(ctx, group);
      if (!record) return std::unexpected(record.error());
      const bool leaving = add.empty() && remove.size() == 1 && remove.front() == by;
      if (!is_member(*record, keys::view(by), !leaving))
        return std::unexpected(make_error_code(errc::not_member));
      auto* members = record->mutable_members();
      for (const auto& change : add) {
        // A member without an account could never be sent to.
        if (auto account = account_in(ctx, change.mailbox); !account)
          return std::unexpected(account.error());
        auto it = std::ranges::find_if(*members, [&](const GroupMember& m) {
          return m.mailbox_id() == keys::view(change.mailbox);
        });
        GroupMember* member = it != members->end() ? &*it : record->add_members();
        member->set_mailbox_id(keys::bytes(change.mailbox));
        member->set_facilitator(change.facilitator);
      }
      for (const auto& gone : remove) {
        auto it = std::ranges::find_if(*members, [&](const GroupMember& m) {
          return m.mailbox_id() == keys::view(gone);
        });
        if (it != members->end()) members->erase(it);
      }
      if (static_cast<std::size_t>(members->size()) > options_.max_group_members)
        return std::unexpected(make_error_code(errc::group_full));
      groups_.erase(group);
      // An empty group is gone; bodies still queued keep their own records.
      if (members->empty())
        ctx.del(f_groups, keys::view(group));
      else
        ctx.put(f_groups, keys::view(group), record->SerializeAsString());
      return static_cast<std::uint32_t>(members->size());
    });
  }

  void expire(std::int64_t cutoff, completion<std::size_t> done) override {
    expire_from(std::string(), cutoff, 0, std::move(done));
  }

  void register_account(const token_hash& invite_token_hash, new_account account,
                        completion<AccountRecord> done) override {
    submit(std::move(done), [=, this, account = std::move(account)](
                                write_context& ctx) -> result<AccountRecord> {
      auto invite = ctx.record<InviteRecord>(f_invites, keys::view(invite_token_hash),
                                             errc::invalid_invite);
      if (!invite) return std::unexpected(invite.error());
      if (invite->expires_at() != 0 && invite->expires_at() <= account.created_at)
        return std::unexpected(make_error_code(errc::invalid_invite));
      std::string value;
      auto s = ctx.get(f_accounts, keys::account(account.mailbox), &value);
      if (s.ok()) return std::unexpected(make_error_code(errc::already_exists));
      if (!s.IsNotFound()) return std::unexpected(to_error(s));

      AccountRecord record;
      record.set_mailbox_id(keys::bytes(account.mailbox));
      *record.mutable_identity() = account.identity;
      auto* device = record.add_devices();
      device->set_device_id(1);
      device->set_signing_key(keys::bytes(account.device_signing_key));
      device->set_created_at(round_down(account.created_at, 86'400));
      record.set_role(invite->role());
      record.set_org_id(invite->org_id());
      record.set_created_at(round_down(account.created_at, 86'400));
      record.set_access_key_hash(keys::bytes(account.access_key_hash));
      ctx.del(f_invites, keys::view(invite_token_hash));
      ctx.put(f_accounts, keys::account(account.mailbox), record.SerializeAsString());
      accounts_.erase(account.mailbox);
      return record;
    });
  }

  void upload_prekeys(const device_address& device, wire::UploadPrekeysRequest prekeys,
                      completion<std::uint32_t> done) override {
    submit(std::move(done), [=, this, prekeys = std::move(prekeys)](
                                write_context& ctx) -> result<std::uint32_t> {
      const auto one_time_prefix = keys::prekey_prefix(device, wire::PREKEY_KIND_ONE_TIME);
      const auto held = ctx.scan(f_prekeys, one_time_prefix, options_.max_one_time_prekeys + 1);
      std::size_t count = held.size();
      for (const auto& p : prekeys.one_time()) {
        std::string ignored;
        if (ctx.get(f_prekeys, keys::prekey(device, wire::PREKEY_KIND_ONE_TIME, p.id()), &ignored)
                .IsNotFound())
          ++count;
      }
      if (count > options_.max_one_time_prekeys)
        return std::unexpected(make_error_code(errc::too_many_prekeys));
      const auto replace = [&](wire::PrekeyKind kind, const wire::SignedPrekey& key) {
        for (const auto& [k, v] : ctx.scan(f_prekeys, keys::prekey_prefix(device, kind), 16))
          ctx.del(f_prekeys, k);
        ctx.put(f_prekeys, keys::prekey(device, kind, key.id()), key.SerializeAsString());
      };
      if (prekeys.has_signed_prekey()) replace(wire::PREKEY_KIND_SIGNED, prekeys.signed_prekey());
      if (prekeys.has_last_resort()) replace(wire::PREKEY_KIND_LAST_RESORT, prekeys.last_resort());
      for (const auto& p : prekeys.one_time())
        ctx.put(f_prekeys, keys::prekey(device, wire::PREKEY_KIND_ONE_TIME, p.id()),
                p.SerializeAsString());
      return static_cast<std::uint32_t>(count);
    });
  }

  void claim_prekeys(const mailbox_id& mailbox, completion<wire::PrekeyBundle> done) override {
    submit(std::move(done), [=, this](write_context& ctx) -> result<wire::PrekeyBundle> {
      auto account = account_in(ctx, mailbox);
      if (!account) return std::unexpected(account.error());
      wire::PrekeyBundle bundle;
      bundle.set_mailbox_id(keys::bytes(mailbox));
      *bundle.mutable_identity() = (*account)->identity();
      for (const auto& d : (*account)->devices()) {
        const device_address address{mailbox, d.device_id()};
        auto* out = bundle.add_devices();
        out->set_device_id(d.device_id());
        const auto first = [&](wire::PrekeyKind kind) {
          auto found = ctx.scan(f_prekeys, keys::prekey_prefix(address, kind), 1);
          return found.empty() ? std::optional<std::pair<std::string, std::string>>()
                               : std::optional(std::move(found.front()));
        };
        if (auto signed_key = first(wire::PREKEY_KIND_SIGNED))
          out->mutable_signed_prekey()->ParseFromString(signed_key->second);
        if (auto one_time = first(wire::PREKEY_KIND_ONE_TIME)) {
          out->mutable_one_time()->ParseFromString(one_time->second);
          ctx.del(f_prekeys, one_time->first);
        } else if (auto last_resort = first(wire::PREKEY_KIND_LAST_RESORT)) {
          out->mutable_last_resort()->ParseFromString(last_resort->second);
        }
      }
      return bundle;
    });
  }

  void create_org(const org_id& id, std::string name, std::int64_t now,
                  completion<OrgRecord> done) override {
    submit(std::move(done), [=, this, name = std::move(name)](
                                write_context& ctx) -> result<OrgRecord> {
      for (const auto& [key, value] : ctx.scan(f_orgs, "", 1'000'000)) {
        OrgRecord existing;
        if (existing.ParseFromString(value) && existing.name() == name)
          return std::unexpected(make_error_code(errc::already_exists));
      }
      OrgRecord org;
      org.set_org_id(keys::bytes(id));
      org.set_name(name);
      org.set_created_at(round_down(now, 86'400));
      ctx.put(f_orgs, keys::view(id), org.SerializeAsString());
      return org;
    });
  }

  void create_invite(const token_hash& invite_token_hash, invite details, std::int64_t now,
                     completion<void> done) override {
    submit(std::move(done), [=](write_context& ctx) -> result<void> {
      std::string ignored;
      if (!ctx.get(f_orgs, keys::view(details.org), &ignored).ok())
        return std::unexpected(make_error_code(errc::not_found));
      InviteRecord record;
      record.set_org_id(keys::bytes(details.org));
      record.set_role(details.role);
      record.set_created_at(round_down(now, 86'400));
      record.set_expires_at(details.expires_at);
      ctx.put(f_invites, keys::view(invite_token_hash), record.SerializeAsString());
      return {};
    });
  }

  void close() override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closing_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (syncer_.joinable()) syncer_.join();
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto* handle : cf_)
      if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
    cf_.fill(nullptr);
    // Close flushes nothing that is not already in the synced WAL, but lets
    // RocksDB finish background work and release the directory lock.
    db_->Close().PermitUncheckedError();
    db_.reset();
  }

 private:
  struct queue_counter {
    std::uint64_t last_seq = 0;
    std::uint64_t count = 0;
    bool changed = false;  // to be written with the current batch
    std::uint64_t batch_first_seq = 0;  // the current batch's first new entry, if any
    std::uint64_t job = 0;  // the last job that loaded it (job_undo)
  };
  // The caches' hashes mix the words of their keys with splitmix64's
  // finalizer, so every bit of a hash depends on every bit of the key, the
  // low ones too, which flat_table takes a slot from. The keys are the
  // server's own (random mailbox and group ids, device ids, sequence
  // numbers), so no stronger hash is needed.
  static std::uint64_t mix(std::uint64_t x) noexcept {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
  }
  static std::uint64_t word_at(const void* bytes) noexcept {
    std::uint64_t w;
    std::memcpy(&w, bytes, sizeof w);
    return w;
  }
  // A 16-byte id (mailbox, group).
  struct id_hash {
    std::size_t operator()(const std::array<std::uint8_t, 16>& id) const noexcept {
      return mix(word_at(id.data()) ^ mix(word_at(id.data() + 8)));
    }
  };
  // A group body, and how many queue entries still refer to it.
  struct body_id {
    group_id group{};
    std::uint64_t seq = 0;
    bool operator==(const body_id&) const = default;
  };
  struct body_id_hash {
    std::size_t operator()(const body_id& b) const noexcept {
      return mix(id_hash()(b.group) ^ b.seq);
    }
  };
  // What an ack or expiry needs of a stored queue entry.
  struct entry_facts {
    envelope_id id{};
    std::int64_t received_at = 0;
    std::optional<body_id> body;  // the group body it refers to, if any
  };
  // A device's queue counter is looked up once per member in a fan-out:
  // keyed by its address, not by its key's string, which cost a malloc and
  // std::hash over 20 bytes each time.
  struct device_hash {
    std::size_t operator()(const device_address& d) const noexcept {
      return mix(id_hash()(d.mailbox) ^ d.device);
    }
  };
  // A queue entry's key (keys::queue_entry) as a map key.
  using entry_key = std::array<char, keys::queue_key_size>;
  // std::hash over the 28 bytes was 9 % of the writer's samples in a
  // fan-out. A device's entries differ only in the seq's last bytes.
  struct entry_key_hash {
    std::size_t operator()(const entry_key& k) const noexcept {
      static_assert(keys::queue_key_size == 28);  // words at 0, 8, 16 and 20
      const auto word = [&](std::size_t at) { return word_at(k.data() + at); };
      return mix(mix(mix(word(0) ^ word(8)) ^ word(16)) ^ word(20));
    }
  };
  static entry_key entry_key_of(std::string_view key) {
    entry_key out;
    std::copy_n(key.begin(), out.size(), out.begin());
    return out;
  }
  struct body_refs {
    std::uint64_t left = 0;
    bool changed = false;   // to be written (or, at 0, deleted) with the current batch
    std::uint64_t job = 0;  // the last job that loaded it (job_undo)
  };
  // What a job changed in the writer's caches, so that a job refused
  // midway can be taken back whole (end_job).
  struct job_undo {
    std::uint64_t job = 0;
    std::size_t batch_count = 0;
    std::size_t changed_counters = 0;
    std::vector<std::pair<queue_counter*, queue_counter>> counters;  // as before the job
    std::size_t changed_refs = 0;
    std::vector<std::pair<body_refs*, body_refs>> refs;  // as before the job
    std::size_t stored_entries = 0;
    std::vector<entry_key> deleted_entries;  // added by the job
  };
  // Completes a request once its batch is written and, if it must be,
  // synced (or either failed).
  using finisher = std::function<void(std::error_code commit_error)>;
  // A request prepared against the batch.
  struct prepared_job {
    std::function<void()> written;  // after the write, before the sync; may be empty
    finisher finish;
    bool needs_sync = false;
  };
  struct job {
    std::function<prepared_job(write_context&)> prepare;
  };

  // Wraps a request: `prepare` runs on the writer thread against the
  // batch; its result reaches `written` (only if it succeeded) once the
  // batch is written and `done` once it is durable. Deletes (acks, expiry) are not `durable`:
  // losing one in a crash only means a redelivery, which clients drop by
  // envelope id, and the next sync persists them anyway.
  template <typename T, typename Prepare>
  void submit(completion<T> done, Prepare prepare, bool durable = true,
              std::type_identity_t<std::function<void(const result<T>&)>> written = {}) {
    job j;
    j.prepare = [this, done, written = std::move(written), prepare = std::move(prepare),
                 durable](write_context& ctx) mutable -> prepared_job {
      begin_job(ctx);
      auto prepared = std::make_shared<result<T>>(prepare(ctx));
      end_job(ctx, prepared->has_value());
      prepared_job out;
      // A refusal changed nothing, so it waits for no sync.
      out.needs_sync = durable && prepared->has_value();
      if (written && prepared->has_value())
        out.written = [written = std::move(written), prepared] { written(*prepared); };
      out.finish = [done = std::move(done), prepared](std::error_code commit_error) {
        if (commit_error && prepared->has_value()) return done(std::unexpected(commit_error));
        done(std::move(*prepared));
      };
      return out;
    };
    {
      std::lock_guard lock(mutex_);
      if (!closing_) {
        jobs_.push_back(std::move(j));
        wake_.notify_one();
        return;
      }
    }
    done(std::unexpected(make_error_code(errc::shutting_down)));
  }

  void writer_loop() {
    no_perf_counts();
    std::vector<job> group;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !jobs_.empty() || closing_; });
        if (jobs_.empty()) return stop_syncer();  // closing and drained
        const auto n = std::min(jobs_.size(), options_.max_batch_requests);
        std::move(jobs_.begin(), jobs_.begin() + static_cast<std::ptrdiff_t>(n),
                  std::back_inserter(group));
        jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      if (accounts_.size() > k_cached_accounts) accounts_.clear();
      if (groups_.size() >
          k_cached_group_members / std::max<std::size_t>(options_.max_group_members, 1))
        groups_.clear();
      // No count is changed between batches, so dropping them loses nothing.
      if (body_refs_.size() > k_cached_body_refs) body_refs_.clear();
      if (entries_.size() > k_cached_entries) entries_.clear();
      if (needs_resume_.exchange(false) && !db_->Resume().ok()) {
        // After a failed write RocksDB refuses writes until resumed.
        needs_resume_ = true;
      }
      rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, true);
      write_context ctx{db_.get(), batch, cf_};
      std::vector<prepared_job> prepared;
      prepared.reserve(group.size());
      for (auto& j : group) prepared.push_back(j.prepare(ctx));
      group.clear();
      write_changed_counters(ctx);
      write_changed_refs(ctx);
      if (batch.GetWriteBatch()->Count() > 0) {
        auto s = db_->Write(rocksdb::WriteOptions(), batch.GetWriteBatch());
        if (!s.ok()) {
          counters_.clear();  // they may hold this failed batch's increments
          changed_counters_.clear();
          body_refs_.clear();  // and its reference counts
          changed_refs_.clear();
          stored_entries_.clear();  // the cache of entries never saw them
          deleted_entries_.clear();
          accounts_.clear();  // and accounts it created
          groups_.clear();    // and groups it changed
          needs_resume_ = needs_our_resume(s);
          hand_to_syncer({std::move(prepared), to_error(s)});
          continue;
        }
      }
      remember_entries();
      // Readable now: push before the sync, so delivery does not wait for
      // the disk.
      for (auto& p : prepared)
        if (p.written) p.written();
      hand_to_syncer({std::move(prepared), {}});
    }
  }

  // The sync thread makes written batches durable and completes them, in
  // the order written, while the writer goes on: a request that comes
  // during a sync is written and pushed at once, not after that sync (a
  // sync that stalls for milliseconds held up every delivery behind it).
  // One sync covers every batch written before it began. A batch whose
  // write failed is completed with that error, in its turn.
  struct written_batch {
    std::vector<prepared_job> jobs;
    std::error_code write_error;
  };
  void hand_to_syncer(written_batch batch) {
    {
      std::lock_guard lock(sync_mutex_);
      written_batches_.push_back(std::move(batch));
    }
    sync_wake_.notify_one();
  }

  // The sync thread completes what it was handed, then ends.
  void stop_syncer() {
    {
      std::lock_guard lock(sync_mutex_);
      writer_done_ = true;
    }
    sync_wake_.notify_one();
  }

  void syncer_loop() {
    std::vector<written_batch> batches;
    for (;;) {
      {
        std::unique_lock lock(sync_mutex_);
        sync_wake_.wait(lock, [&] { return !written_batches_.empty() || writer_done_; });
        if (written_batches_.empty()) return;  // the writer has stopped and all are done
        batches.swap(written_batches_);
      }
      bool needs_sync = false;
      for (const auto& batch : batches)
        for (const auto& p : batch.jobs)
          needs_sync = needs_sync || (p.needs_sync && !batch.write_error);
      std::error_code sync_error;
      if (needs_sync && options_.sync) {
        if (auto s = db_->SyncWAL(); !s.ok()) {
          // The batches are in the memtable and may reach the disk later;
          // the senders are told they failed, and a retry is dropped as a
          // duplicate.
          sync_error = to_error(s);
          needs_resume_ = needs_our_resume(s);
        }
      }
      for (auto& batch : batches)
        for (auto& p : batch.jobs)
          p.finish(batch.write_error ? batch.write_error
                   : p.needs_sync    ? sync_error
                                     : std::error_code());
      batches.clear();
    }
  }

  // A job shares its batch with others, so one refused after some writes
  // (a group send that meets a corrupt member record, an ack whose read
  // fails) must take them back: nothing of a refused request is stored.
  void begin_job(write_context& ctx) {
    ctx.batch.SetSavePoint();
    undo_.job += 1;
    undo_.batch_count = ctx.batch.GetWriteBatch()->Count();
    undo_.changed_counters = changed_counters_.size();
    undo_.counters.clear();
    undo_.changed_refs = changed_refs_.size();
    undo_.refs.clear();
    undo_.stored_entries = stored_entries_.size();
    undo_.deleted_entries.clear();
  }

  void end_job(write_context& ctx, bool succeeded) {
    if (succeeded || ctx.batch.GetWriteBatch()->Count() == undo_.batch_count) {
      // Either kept or untouched (most refusals check before writing), and
      // a rollback rebuilds the whole batch's index.
      ctx.batch.PopSavePoint().PermitUncheckedError();
      if (succeeded) return;
    } else if (auto s = ctx.batch.RollbackToSavePoint(); !s.ok()) {
      throw std::logic_error("a store job's save point is gone: " + s.ToString());
    }
    for (auto it = undo_.counters.rbegin(); it != undo_.counters.rend(); ++it)
      *it->first = it->second;
    changed_counters_.resize(undo_.changed_counters);
    for (auto it = undo_.refs.rbegin(); it != undo_.refs.rend(); ++it) *it->first = it->second;
    changed_refs_.resize(undo_.changed_refs);
    stored_entries_.resize(undo_.stored_entries);
    for (const auto& key : undo_.deleted_entries) deleted_entries_.erase(key);
  }

  // RocksDB resumes by itself from a full disk once its SstFileManager
  // sees free space. A Resume() of ours on every batch while the disk is
  // still full races that recovery: under a file system that refused
  // writes yet reported free space, it left the database in a fatal error
  // state within a few sends, which only a restart clears.
  static bool needs_our_resume(const rocksdb::Status& failure) { return !failure.IsNoSpace(); }

  // Through the writer's cache of account records: a send reads its
  // recipient's, a group send every member's. Accounts are written only
  // here, in the writer, which drops the entry (create_account).
  result<const AccountRecord*> account_in(write_context& ctx, const mailbox_id& mailbox) {
    if (auto it = accounts_.find(mailbox); it != accounts_.end()) return &it->second;
    auto record = ctx.record<AccountRecord>(f_accounts, keys::account(mailbox));
    if (!record) return std::unexpected(record.error());
    return &accounts_.emplace(mailbox, std::move(*record)).first->second;
  }

  // The writer thread's cache of queue counters, loaded on first use.
  result<queue_counter*> load_counter(write_context& ctx, const device_address& device) {
    if (auto it = counters_.find(device); it != counters_.end())
      return touched(it->second, undo_.counters);
    std::string value;
    auto s = ctx.get(f_queue, keys::queue_prefix(device), &value);
    queue_counter counter;
    if (s.ok()) {
      if (value.size() != 16) return std::unexpected(make_error_code(errc::corrupt));
      counter = {keys::get_be(value, 0, 8), keys::get_be(value, 8, 8)};
    } else if (!s.IsNotFound()) {
      return std::unexpected(to_error(s));
    }
    return touched(counters_.emplace(device, counter).first->second, undo_.counters);
  }

  // Notes a cached counter's or count's state in `before` ahead of this
  // job's first change (end_job). Pointers into the caches stay valid
  // within a batch: they are cleared only between batches or after a
  // failed write.
  template <typename Cached>
  Cached* touched(Cached& cached, std::vector<std::pair<Cached*, Cached>>& before) {
    if (cached.job != undo_.job) {
      cached.job = undo_.job;
      before.emplace_back(&cached, cached);
    }
    return &cached;
  }

  // An enqueue's `written` hook in the form submit takes.
  static std::function<void(const result<std::vector<stored_envelope>>&)> on_written(
      written_hook hook) {
    if (!hook) return {};
    return [hook = std::move(hook)](const result<std::vector<stored_envelope>>& stored) {
      hook(*stored);
    };
  }

  // The next sequence number of `device`'s queue, for one new entry. A seq
  // is never reused, and a device learns it only from a push sent once the
  // batch is written, so the new entry is written with put_unread; an ack
  // that names it in the same batch finds it in stored_entries_ (entries_at).
  std::uint64_t take_seq(const device_address& device, queue_counter& c) {
    ++c.last_seq;
    ++c.count;
    if (c.batch_first_seq == 0) c.batch_first_seq = c.last_seq;
    counter_changed(device, c);
    return c.last_seq;
  }

  // A counter is written once per batch, however many of the batch's
  // envelopes it counts (write_changed_counters, after every request of
  // the batch, so with put_unread).
  void counter_changed(const device_address& device, queue_counter& c) {
    if (std::exchange(c.changed, true)) return;
    changed_counters_.push_back(device);
  }

  void write_changed_counters(write_context& ctx) {
    for (const auto& device : changed_counters_) {
      auto& c = counters_.at(device);
      std::string value;
      keys::put_be(value, c.last_seq, 8);
      keys::put_be(value, c.count, 8);
      ctx.put_unread(f_queue, keys::queue_prefix(device), value);
      c.changed = false;
      c.batch_first_seq = 0;
    }
    changed_counters_.clear();
  }

  // A group body's reference count, written once per batch however many
  // of the batch's acks count it down (write_changed_refs): a fan-out's
  // acks otherwise read and rewrite it once per member.
  result<body_refs*> load_refs(write_context& ctx, const body_id& id) {
    if (auto it = body_refs_.find(id); it != body_refs_.end())
      return touched(it->second, undo_.refs);
    std::string value;
    auto s = ctx.get(f_bodies, keys::body_refs(id.group, id.seq), &value);
    if (!s.ok() && !s.IsNotFound()) return std::unexpected(to_error(s));
    // A missing or unreadable count frees the body at its next reference.
    const std::uint64_t left = s.ok() && value.size() == 8 ? keys::get_be(value, 0, 8) : 1;
    return touched(body_refs_.emplace(id, body_refs{left}).first->second, undo_.refs);
  }

  void refs_changed(const body_id& id, body_refs& r) {
    if (!std::exchange(r.changed, true)) changed_refs_.push_back(id);
  }

  // The last reference gone deletes the body and its count. Runs after
  // every request of the batch, so nothing reads these writes back in it.
  void write_changed_refs(write_context& ctx) {
    for (const auto& id : changed_refs_) {
      auto it = body_refs_.find(id);
      const auto refs_key = keys::body_refs(id.group, id.seq);
      if (it->second.left == 0) {
        ctx.del(f_bodies, keys::body(id.group, id.seq));
        ctx.del(f_bodies, refs_key);
        body_refs_.erase(it);
        continue;
      }
      std::string value;
      keys::put_be(value, it->second.left, 8);
      ctx.put_unread(f_bodies, refs_key, value);
      it->second.changed = false;
    }
    changed_refs_.clear();
  }

  // The stored entries at `entry_keys` (all of one device, whose counter
  // is `queue`), or none where there is none. This batch's own changes
  // are not in its index (put_unread, single_delete_unread) but in
  // stored_entries_ and deleted_entries_; older entries come from the
  // cache of entries where it has them, else from the database.
  result<std::vector<std::optional<entry_facts>>> entries_at(
      write_context& ctx, const queue_counter& queue, const std::vector<std::string>& entry_keys) {
    std::vector<std::optional<entry_facts>> out(entry_keys.size());
    std::vector<std::size_t> unread;
    for (std::size_t i = 0; i < entry_keys.size(); ++i) {
      const auto key = entry_key_of(entry_keys[i]);
      if (deleted_entries_.contains(key)) continue;
      const auto seq = keys::get_be(entry_keys[i], keys::queue_prefix_size, 8);
      if (queue.batch_first_seq != 0 && seq >= queue.batch_first_seq && seq <= queue.last_seq) {
        // Stored by this batch, which a device learns of only by guessing:
        // rare enough for a search of the batch's list.
        const auto stored = std::ranges::find(stored_entries_, key, &stored_entry::first);
        if (stored != stored_entries_.end()) out[i] = stored->second;
      } else if (const auto* facts = entries_.find(key)) {
        out[i] = *facts;
      } else {
        unread.push_back(i);
      }
    }
    if (unread.empty()) return out;
    std::vector<std::string> read_keys;
    for (auto i : unread) read_keys.push_back(entry_keys[i]);
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> statuses;
    ctx.get_many(f_queue, read_keys, values, statuses);
    for (std::size_t r = 0; r < unread.size(); ++r) {
      const auto& s = statuses[r];
      if (s.IsNotFound()) continue;
      if (!s.ok()) return std::unexpected(to_error(s));
      out[unread[r]] = facts_of(values[r].ToStringView());
      if (!out[unread[r]]) return std::unexpected(make_error_code(errc::corrupt));
    }
    return out;
  }

  // Deletes a queue entry and counts it off `counter`, which the caller
  // marks changed, and off its group body's references if it refers to one.
  // The delete skips the batch's index (its upkeep was a quarter of a
  // fan-out's ack), so what reads entries in the batch asks deleted_entries_.
  result<void> remove_entry(write_context& ctx, queue_counter& counter, std::string_view key,
                            const entry_facts& facts) {
    if (facts.body) {
      auto refs = load_refs(ctx, *facts.body);
      if (!refs) return std::unexpected(refs.error());
      if ((*refs)->left > 0) --(*refs)->left;
      refs_changed(*facts.body, **refs);
    }
    if (counter.count > 0) --counter.count;
    ctx.single_delete_unread(f_queue, key);
    const auto& deleted = undo_.deleted_entries.emplace_back(entry_key_of(key));
    deleted_entries_.insert(deleted);
    // Out of the cache at once: if this job or the batch's write fails, the
    // entry is read from the database the next time, which is right, only
    // slower.
    entries_.erase(deleted);
    return {};
  }

  // Once a batch is written: the cache of entries gains the ones it stored
  // and did not delete again. Its deletes left the cache as they were made
  // (remove_entry), so the set of them needs no walk over its slots, which
  // stay as large as the largest batch made them.
  void remember_entries() {
    for (const auto& [key, facts] : stored_entries_)
      if (!deleted_entries_.contains(key)) entries_.insert_or_assign(key, facts);
    stored_entries_.clear();
    deleted_entries_.clear();
  }

  // The push frame of a stored queue entry: the stored frame itself, or a
  // group reference resolved to a head and the shared body.
  result<push_frame> push_frame_of(std::uint64_t seq, std::string_view value) {
    keys::group_ref ref;
    if (!keys::group_ref::is(value))
      return push_frame{std::make_shared<const std::string>(value), nullptr};
    if (!ref.decode(value)) return std::unexpected(make_error_code(errc::corrupt));
    auto body = std::make_shared<std::string>();
    auto s = db_->Get(rocksdb::ReadOptions(), cf_[f_bodies], keys::body(ref.group, ref.body_seq),
                      body.get());
    if (s.IsNotFound()) return std::unexpected(make_error_code(errc::corrupt));
    if (!s.ok()) return std::unexpected(to_error(s));
    return push_frame{group_push_head(seq, ref, body->size()), std::move(body)};
  }

  static std::optional<entry_facts> facts_of(std::string_view value) {
    if (keys::group_ref ref; ref.decode(value))
      return entry_facts{ref.envelope, ref.received_at, body_id{ref.group, ref.body_seq}};
    wire::Envelopes frame;
    if (!frame.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
        frame.envelopes_size() != 1 || frame.envelopes(0).envelope_id().size() != 16)
      return std::nullopt;
    return entry_facts{to_array<16>(frame.envelopes(0).envelope_id()),
                       frame.envelopes(0).received_at(), std::nullopt};
  }

  // A group the caller cannot see is indistinguishable from no group.
  static result<GroupRecord> group_in(write_context& ctx, const group_id& group) {
    return ctx.record<GroupRecord>(f_groups, keys::view(group), errc::not_member);
  }
  // The writer's cache of group records, for sends: parsing a group's
  // record (1,000 members in the fan-out) for every send was 4 % of the
  // writer's samples. update_group drops the groups it changes; a group
  // create_group makes did not exist, and only records found are cached.
  result<const GroupRecord*> cached_group(write_context& ctx, const group_id& group) {
    if (auto it = groups_.find(group); it != groups_.end()) return &it->second;
    auto record = group_in(ctx, group);
    if (!record) return std::unexpected(record.error());
    return &groups_.emplace(group, std::move(*record)).first->second;
  }

  // Expiry walks the queue in chunks, one writer turn each, so a large
  // queue never holds up sends for long.
  void expire_from(std::string start, std::int64_t cutoff, std::size_t removed_so_far,
                   completion<std::size_t> done) {
    constexpr std::size_t k_chunk = 512;
    struct progress {
      std::size_t removed = 0;
      std::optional<std::string> next;
    };
    submit<progress>(
        [=, this](result<progress> r) {
          if (!r) return done(std::unexpected(r.error()));
          const auto total = removed_so_far + r->removed;
          if (r->next) return expire_from(std::move(*r->next), cutoff, total, done);
          done(total);
        },
        [=, this](write_context& ctx) -> result<progress> {
          progress p;
          std::vector<std::pair<std::string, entry_facts>> expired;
          {
            // Sees this batch too, so an envelope acked a moment ago is not counted twice.
            std::unique_ptr<rocksdb::Iterator> it(ctx.batch.NewIteratorWithBase(
                cf_[f_queue], db_->NewIterator(rocksdb::ReadOptions(), cf_[f_queue])));
            std::size_t seen = 0;
            for (it->Seek(start); it->Valid(); it->Next()) {
              if (++seen > k_chunk) {
                p.next = it->key().ToString();
                break;
              }
              const auto key = it->key().ToStringView();
              if (key.size() != keys::queue_key_size) continue;
              // Deleted earlier in this batch, which the iterator does not see.
              if (deleted_entries_.contains(entry_key_of(key))) continue;
              auto facts = facts_of(it->value().ToStringView());
              if (!facts) continue;  // never delete what we cannot read
              if (facts->received_at < cutoff) expired.emplace_back(key, *facts);
            }
            if (!it->status().ok()) return std::unexpected(to_error(it->status()));
          }
          for (const auto& [key, facts] : expired) {
            const device_address device{to_array<16>(std::string_view(key).substr(0, 16)),
                                        static_cast<std::uint32_t>(keys::get_be(key, 16, 4))};
            auto counter = load_counter(ctx, device);
            if (!counter) return std::unexpected(counter.error());
            auto removed = remove_entry(ctx, **counter, key, facts);
            if (!removed) return std::unexpected(removed.error());
            counter_changed(device, **counter);
            ++p.removed;
          }
          return p;
        },
        false);
  }

  options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, f_count> cf_{};
  std::array<std::uint8_t, 16> server_id_{};

  // find_access_key_hash's cache, shared by the I/O threads. Accounts are
  // written only by register_account, which never replaces one; whatever
  // comes to change or delete an account must drop its entry here.
  std::mutex access_keys_mutex_;
  std::unordered_map<mailbox_id, std::array<std::uint8_t, 32>, id_hash> access_keys_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> jobs_;
  bool closing_ = false;
  bool closed_ = false;
  std::thread writer_;

  std::mutex sync_mutex_;
  std::condition_variable sync_wake_;
  std::vector<written_batch> written_batches_;  // waiting for the sync thread
  bool writer_done_ = false;
  std::thread syncer_;
  // Set by either thread after a failed write or sync; the writer resumes.
  std::atomic<bool> needs_resume_{false};

  // Writer thread only.
  std::unordered_map<device_address, queue_counter, device_hash> counters_;
  std::vector<device_address> changed_counters_;  // keys in counters_
  std::unordered_map<body_id, body_refs, body_id_hash> body_refs_;
  std::vector<body_id> changed_refs_;  // keys in body_refs_
  // Queue entries written and not yet deleted, as far as the cache holds
  // them: an ack of one need not look it up in the memtable. What a batch
  // stores joins it once the batch is written; what it deletes leaves at
  // once (remove_entry).
  flat_table<entry_key, entry_facts, entry_key_hash> entries_;
  using stored_entry = std::pair<entry_key, entry_facts>;
  std::vector<stored_entry> stored_entries_;  // by this batch
  struct no_value {};
  flat_table<entry_key, no_value, entry_key_hash> deleted_entries_;  // by this batch
  job_undo undo_;
  std::unordered_map<mailbox_id, AccountRecord, id_hash> accounts_;
  std::unordered_map<group_id, GroupRecord, id_hash> groups_;
};

}  // namespace

const std::error_category& category() noexcept {
  static const store_category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

constexpr std::uint64_t k_memtable_budget = 64 << 20;  // write_buffer_size is a quarter

namespace {

// Tells the store's owner once when RocksDB stops writing until reopened.
class unrecoverable_listener : public rocksdb::EventListener {
 public:
  explicit unrecoverable_listener(std::function<void()> notify) : notify_(std::move(notify)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason,
                         rocksdb::Status* error) override {
    if (error->severity() >= rocksdb::Status::Severity::kFatalError && !told_.exchange(true))
      notify_();
  }

 private:
  std::function<void()> notify_;
  std::atomic<bool> told_{false};
};

}  // namespace

result<std::unique_ptr<store>> open_rocksdb_store(const options& opts) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  // One synced WAL write per batch is the durability point; RocksDB's own
  // info log stays small (info_log), never holds record contents, and
  // drops lines on a full disk.
  db_options.keep_log_file_num = 4;
  if (opts.env != nullptr) db_options.env = opts.env;
  // Bounds what a restart after a crash replays: without it the small
  // families' few unflushed writes pin every WAL file up to gigabytes
  // (four times all write buffers), and start-up replays all of it.
  db_options.max_total_wal_size = 64 << 20;
  if (opts.on_unrecoverable)
    db_options.listeners.push_back(
        std::make_shared<unrecoverable_listener>(opts.on_unrecoverable));

  // 16 MiB memtables (the default budget gives 128 MiB): after a full disk
  // RocksDB resumes only once a memtable's worth of space is free, and a
  // smaller memtable also bounds the WAL replayed at start-up.
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.OptimizeLevelStyleCompaction(k_memtable_budget);
  // One block cache for every family, of RocksDB's default size.
  rocksdb::BlockBasedTableOptions tables;
  tables.block_cache = rocksdb::NewLRUCache(8 << 20);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(tables));
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto* name : k_family_names) families.emplace_back(name, cf_options);
  // Queued envelopes and group bodies are ciphertext, which does not
  // compress: trying to at every compaction is wasted work.
  for (auto family : {f_queue, f_bodies}) {
    families[family].options.compression = rocksdb::kNoCompression;
    families[family].options.compression_per_level.clear();
  }
  // A device's queue is read front to back, a pump batch of 32 envelopes
  // (about 1 KiB each) at a time: 32 KiB blocks make that one block read
  // from the table, not about ten, and an ack's lookups find the same block.
  tables.block_size = 32 << 10;
  families[f_queue].options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(tables));
  // Each device's queue grows at its end, many queues at once: a memtable
  // insert starts from where that device's last one went, not the top of
  // the skiplist (RocksDB keeps a hint per prefix, ~250 bytes each).
  families[f_queue].options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(keys::queue_prefix_size));
  // No bloom filter per memtable: acks find recent entries in the writer's
  // cache (entries_), and the filter's upkeep cost inserts more than it
  // saved the acks that miss it (docs/ARCHITECTURE.md, "Tuning").

  std::error_code ec;
  std::filesystem::create_directories(opts.directory, ec);
  if (ec) return std::unexpected(make_error_code(errc::io_error));
  db_options.info_log =
      std::make_shared<info_log>(db_options.env->GetFileSystem(), opts.directory.string());

  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto s = rocksdb::DB::Open(db_options, opts.directory.string(), families, &handles, &db);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos)
      return std::unexpected(make_error_code(errc::locked));
    return std::unexpected(to_error(s));
  }
  auto store = std::make_unique<rocksdb_store>(opts, db, std::move(handles));
  if (auto started = store->start(); !started) return std::unexpected(started.error());
  return store;
}

}  // namespace haven::store
