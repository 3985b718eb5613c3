#pragma once
// A store in a fresh directory with an organisation, accounts and sends
// made the way havend makes them; shared by the store tests.

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "haven/store/store.hpp"
#include "temp_dir.hpp"

namespace haven::store::test {

using haven::test::temp_dir;

inline constexpr std::int64_t k_now = 1'700'000'000;

template <std::size_t N>
inline std::array<std::uint8_t, N> filled(std::uint8_t v) {
  std::array<std::uint8_t, N> a{};
  a.fill(v);
  return a;
}

struct fixture {
  temp_dir dir{"haven-store"};
  options opts{};
  std::unique_ptr<store> db;

  explicit fixture(std::size_t max_queue = 10'000) {
    opts.directory = dir.path() / "db";
    opts.max_queue_per_device = max_queue;
    open();
  }
  void open() {
    auto s = open_rocksdb_store(opts);
    REQUIRE(s.has_value());
    db = std::move(*s);
  }
  void reopen() {
    db->close();
    db.reset();
    open();
  }

  org_id make_org(const std::string& name = "Riverside IDVA") {
    auto id = filled<16>(0x0a);
    auto org = wait_for<OrgRecord>([&](auto done) { db->create_org(id, name, k_now, done); });
    REQUIRE(org.has_value());
    return id;
  }

  token_hash make_invite(const org_id& org, std::int64_t expires_at = 0, std::uint8_t tag = 1) {
    auto hash = filled<32>(tag);
    auto r = wait_for<void>([&](auto done) {
      db->create_invite(hash, {org, haven::wire::ROLE_SURVIVOR, expires_at}, k_now, done);
    });
    REQUIRE(r.has_value());
    return hash;
  }

  mailbox_id make_account(std::uint8_t tag = 1) {
    auto invite = make_invite(make_org_once(), 0, static_cast<std::uint8_t>(0x80 + tag));
    new_account a;
    a.mailbox = filled<16>(tag);
    a.device_signing_key = filled<32>(tag);
    a.created_at = k_now;
    auto r = wait_for<AccountRecord>([&](auto done) { db->register_account(invite, a, done); });
    REQUIRE(r.has_value());
    return a.mailbox;
  }

  org_id make_org_once() {
    if (!org_) org_ = make_org();
    return *org_;
  }

  result<std::vector<stored_envelope>> send(const mailbox_id& m, std::uint8_t id_tag,
                                            std::uint32_t device = 1, std::int64_t at = k_now) {
    return wait_for<std::vector<stored_envelope>>([&](auto done) {
      db->enqueue(m, filled<16>(id_tag), {{device, "sealed-" + std::to_string(id_tag)}}, at, done);
    });
  }

  // Acks envelopes of `device`; returns the seqs that were not there.
  result<std::vector<std::uint64_t>> ack(const device_address& device,
                                         std::vector<delivered_envelope> envelopes) {
    return wait_for<std::vector<std::uint64_t>>(
        [&](auto done) { db->ack(device, std::move(envelopes), done); });
  }

  std::optional<org_id> org_;
};

inline haven::wire::Envelope envelope_of(const queued_envelope& q) {
  haven::wire::Envelopes frame;
  REQUIRE(frame.ParseFromString(q.frame.bytes()));
  REQUIRE(frame.envelopes_size() == 1);
  return frame.envelopes(0);
}

// Runs `use` on the closed store's RocksDB with each column family's
// handle by name, then opens the store again.
inline void with_raw_db(
    fixture& f,
    const std::function<void(rocksdb::DB&, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>&
        use) {
  f.db->close();
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), f.opts.directory.string(), &names)
              .ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(
      rocksdb::DB::Open(rocksdb::DBOptions(), f.opts.directory.string(), families, &handles, &raw)
          .ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (std::size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  use(*db, by_name);
  for (auto* h : handles) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  REQUIRE(db->Close().ok());
  db.reset();
  f.open();
}

}  // namespace haven::store::test
