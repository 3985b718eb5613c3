#pragma once
// The relay's durable state: accounts, prekeys, per-device envelope queues,
// groups and their message bodies, organisations and invites.
//
// Reads are synchronous and thread-safe. Every change goes through one
// writer thread that group-commits: the changes of all requests waiting at
// that moment go into one batch and one WAL write. A sync thread then syncs
// the WAL, once for every batch written meanwhile, and runs each request's
// completion, in the order written (post it elsewhere for real work), while
// the writer goes on with the next batch. A completion that reports success
// means the change is durable. Changes are readable from the write on,
// before the sync.
// Read-modify-write requests (claiming a one-time prekey, using an invite)
// see earlier requests of the same batch, so each is applied exactly once.
// A request that fails changes nothing, even if it fails midway through
// its writes (a group send that meets an unreadable member record).

#include <array>
#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "store.pb.h"
#include "wire.pb.h"

namespace rocksdb {
class Env;
}

namespace haven::store {

using mailbox_id = std::array<std::uint8_t, 16>;
using envelope_id = std::array<std::uint8_t, 16>;
using org_id = std::array<std::uint8_t, 16>;
using token_hash = std::array<std::uint8_t, 32>;
using vault_id = std::array<std::uint8_t, 16>;
using group_id = std::array<std::uint8_t, 16>;
using verifier = std::array<std::uint8_t, 32>;

struct device_address {
  mailbox_id mailbox{};
  std::uint32_t device = 0;
  bool operator==(const device_address&) const = default;
};

enum class errc {
  not_found = 1,     // no such record
  already_exists,    // a record with that id or name exists
  invalid_invite,    // unknown, used or expired invite token
  unknown_device,    // the mailbox has no such device
  queue_full,        // the device's queue is at its cap
  too_many_prekeys,  // the upload would exceed the per-device cap
  no_space,          // the disk is full; nothing was written
  io_error,          // the write or read failed; nothing was written
  corrupt,           // a stored record does not parse
  shutting_down,     // the store is closing and takes no more changes
  locked,            // another process (a running havend) holds the directory
  not_owner,         // the vault id belongs to another mailbox
  not_member,        // no such group, or the caller may not do this in it
  group_full,        // the group would exceed max_group_members
};
[[nodiscard]] const std::error_category& category() noexcept;
[[nodiscard]] std::error_code make_error_code(errc e) noexcept;

template <typename T>
using result = std::expected<T, std::error_code>;

struct options {
  std::filesystem::path directory;
  // Synced WAL writes; only tests of the writer's behaviour turn this off.
  bool sync = true;
  std::size_t max_queue_per_device = 10'000;
  std::size_t max_one_time_prekeys = 1'000;
  std::size_t max_batch_requests = 4'096;
  std::size_t max_group_members = 1'000;
  // The file system RocksDB writes through; null is the real one. Tests
  // pass a fault-injecting one. Must outlive the store.
  rocksdb::Env* env = nullptr;
  // Called once if RocksDB stops writing for good: an error it rates fatal
  // or unrecoverable (an I/O error in its write-ahead log, say), which no
  // resume clears, only reopening. Every write fails from then on, so
  // havend stops and its supervisor restarts it. Runs on a RocksDB thread
  // under RocksDB's lock: it must be short and must not call the store.
  std::function<void()> on_unrecoverable;
};

// The bytes of one pushed envelope: an Envelopes message (wire.proto)
// holding it alone, `head` then `body` back to back, so the bytes of
// several concatenate into one Envelopes. A 1:1 envelope is stored as these
// bytes and is all `head`; a group envelope's `body` is the group message,
// one buffer shared by every member's frame, so fan-out copies only the
// ~40-byte head.
struct push_frame {
  std::shared_ptr<const std::string> head;
  std::shared_ptr<const std::string> body;  // null for a 1:1 envelope

  [[nodiscard]] std::size_t size() const noexcept {
    return head->size() + (body ? body->size() : 0);
  }
  [[nodiscard]] std::string bytes() const { return *head + (body ? *body : std::string()); }
};

// One envelope waiting in a device's queue.
struct queued_envelope {
  std::uint64_t seq = 0;
  push_frame frame;
};

struct device_envelope {
  std::uint32_t device = 0;
  std::string sealed;
};

// What enqueue stored for one device, for pushing to a connected device.
struct stored_envelope {
  device_address address;
  queued_envelope envelope;
};

// An ack names the envelope it deletes by seq and id.
struct delivered_envelope {
  std::uint64_t seq = 0;
  envelope_id id{};
};

struct new_account {
  mailbox_id mailbox{};
  wire::IdentityKeys identity;
  std::array<std::uint8_t, 32> device_signing_key{};
  std::array<std::uint8_t, 32> access_key_hash{};
  std::int64_t created_at = 0;
};

struct invite {
  org_id org{};
  wire::Role role = wire::ROLE_UNSPECIFIED;
  std::int64_t expires_at = 0;
};

struct member_change {
  mailbox_id mailbox{};
  bool facilitator = false;
};

struct vault_header_info {
  std::string header;
  std::uint32_t tries_left = 0;
};

struct vault_opening {
  bool opened = false;      // the verifier matched
  std::string sealed;       // the vault, when opened
  std::uint32_t tries_left = 0;  // after this attempt; 0 means it was destroyed
};

template <typename T>
using completion = std::function<void(result<T>)>;

// Runs on the writer thread once envelopes are written (readable) and
// before they are synced, so a relay can push them to connected devices
// while the sync runs.
using written_hook = std::function<void(const std::vector<stored_envelope>&)>;

class store {
 public:
  virtual ~store() = default;

  // ---- reads

  [[nodiscard]] virtual result<AccountRecord> find_account(const mailbox_id& mailbox) = 0;
  // The hash of a mailbox's access key, which every send checks. Cached:
  // an account's access key never changes. Errors: not_found.
  [[nodiscard]] virtual result<std::array<std::uint8_t, 32>> find_access_key_hash(
      const mailbox_id& mailbox) = 0;
  // Up to `limit` envelopes with seq > after_seq, oldest first, stopping
  // after the one that brings their frames to `max_bytes` or more.
  [[nodiscard]] virtual result<std::vector<queued_envelope>> read_queue(
      const device_address& device, std::uint64_t after_seq, std::size_t limit,
      std::size_t max_bytes = SIZE_MAX) = 0;
  // This install's random id, made on first open; clients sign it at log-in.
  [[nodiscard]] virtual const std::array<std::uint8_t, 16>& server_id() const noexcept = 0;
  [[nodiscard]] virtual result<std::vector<OrgRecord>> list_orgs() = 0;
  // The clear header of a vault and its wrong tries left. Errors: not_found.
  [[nodiscard]] virtual result<vault_header_info> find_vault(const vault_id& id,
                                                             std::uint32_t max_failures) = 0;

  // ---- changes (group-committed; `done` runs on the store's threads, above)

  // Stores one envelope per device with the next sequence number of each
  // device's queue. Fails as a whole (nothing stored) with unknown_device,
  // queue_full, no_space or io_error. `written` (may be empty) sees them
  // before the sync; if the sync then fails, `done` reports io_error and
  // the envelopes may or may not survive a crash, so a sender retries with
  // the same envelope id and receivers drop the duplicate.
  virtual void enqueue(const mailbox_id& mailbox, const envelope_id& id,
                       std::vector<device_envelope> envelopes, std::int64_t received_at,
                       completion<std::vector<stored_envelope>> done,
                       written_hook written = {}) = 0;

  // Stores `sealed` once and a reference to it, with the next sequence
  // number, in the queue of every device of every member except `from`.
  // A device whose queue is full misses this message rather than blocking
  // the group. Errors: not_member (no such group, or `from` is not in it),
  // no_space, io_error; `written` and a failed sync as for enqueue.
  virtual void enqueue_group(const group_id& group, const device_address& from,
                             const envelope_id& id, std::string sealed,
                             std::int64_t received_at,
                             completion<std::vector<stored_envelope>> done,
                             written_hook written = {}) = 0;

  // Deletes each named envelope whose id matches, in one batch; returns the
  // seqs of those that were not there (none at seq, or another id: that
  // one is kept). Not synced on its own: after a crash an acked envelope
  // may come again.
  virtual void ack(const device_address& device, std::vector<delivered_envelope> envelopes,
                   completion<std::vector<std::uint64_t>> done) = 0;

  // Creates a group whose only member and facilitator is `creator`;
  // returns the member count (1). Errors: already_exists.
  virtual void create_group(const group_id& group, const mailbox_id& creator, std::int64_t now,
                            completion<std::uint32_t> done) = 0;

  // Adds (or changes the role of) then removes members; returns the member
  // count. `by` must be a facilitator, except that a member may remove
  // itself alone. The caller has checked the added mailboxes' access keys.
  // Errors: not_member, group_full, not_found (an added mailbox has no account).
  virtual void update_group(const group_id& group, const mailbox_id& by,
                            std::vector<member_change> add, std::vector<mailbox_id> remove,
                            completion<std::uint32_t> done) = 0;

  // Deletes every envelope received before `cutoff`; returns how many.
  virtual void expire(std::int64_t cutoff, completion<std::size_t> done) = 0;

  // Uses the invite named by `invite_token_hash` (deleting it) and creates
  // the account as device 1 with the invite's role and organisation.
  virtual void register_account(const token_hash& invite_token_hash, new_account account,
                                completion<AccountRecord> done) = 0;

  // Replaces the signed and last-resort prekeys that are present and adds
  // the one-time ones; returns how many one-time prekeys the device holds.
  virtual void upload_prekeys(const device_address& device, wire::UploadPrekeysRequest prekeys,
                              completion<std::uint32_t> done) = 0;

  // For each device of the mailbox: its signed prekey and one one-time
  // prekey, which is deleted (each is handed out once), or the last-resort
  // key when none are left.
  virtual void claim_prekeys(const mailbox_id& mailbox, completion<wire::PrekeyBundle> done) = 0;

  // Stores or replaces `owner`'s vault; resets its wrong-try count.
  // Errors: not_owner (the id is bound to another mailbox).
  virtual void store_vault(const mailbox_id& owner, const vault_id& id, std::string header,
                           const verifier& auth_verifier, std::string sealed,
                           completion<void> done) = 0;

  // Compares `presented` (the hash of the k_auth offered) with the vault's
  // verifier in constant time. A match resets the count and returns the
  // vault; a miss counts one wrong try, durably, before the answer, and
  // the try that reaches `max_failures` deletes the vault. Errors: not_found.
  virtual void open_vault(const vault_id& id, const verifier& presented,
                          std::uint32_t max_failures, completion<vault_opening> done) = 0;

  // Names are unique (already_exists otherwise); the caller draws the id.
  virtual void create_org(const org_id& id, std::string name, std::int64_t now,
                          completion<OrgRecord> done) = 0;
  virtual void create_invite(const token_hash& invite_token_hash, invite details,
                             std::int64_t now, completion<void> done) = 0;

  // Stops taking changes, finishes the ones already submitted, and closes
  // the database cleanly. Idempotent; also done by the destructor.
  virtual void close() = 0;
};

// Opens (creating if needed) a RocksDB store in options.directory.
// Fails with errc::locked when another process has it open.
[[nodiscard]] result<std::unique_ptr<store>> open_rocksdb_store(const options& options);

// Runs a change synchronously, for tools and tests:
//   auto org = wait_for<OrgRecord>([&](auto done) { s.create_org("x", now, done); });
template <typename T, typename Submit>
[[nodiscard]] result<T> wait_for(Submit&& submit) {
  std::promise<result<T>> promise;
  auto future = promise.get_future();
  submit([&promise](result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

}  // namespace haven::store

template <>
struct std::is_error_code_enum<haven::store::errc> : std::true_type {};
