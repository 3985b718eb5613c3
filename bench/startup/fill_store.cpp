// fill_store: fills a havend data directory quickly through haven::store
// (the same store havend opens), for the start-up and idle-connection
// benchmarks. Run it while havend is stopped.
//
// Creates --accounts accounts (each with an invite of its own, used at
// once, as registration does) and queues --envelopes-per-account sealed
// envelopes of --size random bytes for each account's device 1. Writes one
// line per account to --accounts-out: mailbox id, device key seed and
// access key, all hex, so haven_loadgen --accounts and startup_probe can
// log in as them.

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "haven/crypto/signing.hpp"
#include "haven/crypto/verify.hpp"
#include "haven/store/store.hpp"

namespace {

using namespace haven;
using steady = std::chrono::steady_clock;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename Bytes>
std::string hex(const Bytes& b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    const auto v = static_cast<std::uint8_t>(c);
    out += digits[v >> 4];
    out += digits[v & 15];
  }
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> random_array() {
  std::array<std::uint8_t, N> a{};
  crypto::random_fill(a);
  return a;
}

// At most `limit` store requests outstanding; the first failure is kept.
class throttle {
 public:
  explicit throttle(std::size_t limit) : limit_(limit) {}
  void acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return outstanding_ < limit_; });
    ++outstanding_;
  }
  void release(std::error_code ec) {
    {
      std::lock_guard lock(mutex_);
      --outstanding_;
      if (ec && !error_) error_ = ec;
    }
    cv_.notify_all();
  }
  std::error_code drain() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return outstanding_ == 0; });
    return error_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t limit_;
  std::size_t outstanding_ = 0;
  std::error_code error_;
};

}  // namespace

int main(int argc, char** argv) {
  crypto::ensure_sodium();
  std::string dir, accounts_out, json_out;
  std::size_t accounts = 1000, per_account = 1000, size = 1024, in_flight = 8192;
  bool time_open = false;
  CLI::App app{"fill_store: fill a havend data directory with accounts and queued envelopes"};
  app.add_option("-d,--data-dir", dir, "havend's data directory (created if missing)")->required();
  app.add_option("--accounts", accounts, "Accounts to create")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--envelopes-per-account", per_account, "Envelopes queued for each account")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--size", size, "Sealed bytes per envelope")
      ->capture_default_str()
      ->check(CLI::Range(1, 256 * 1024));
  app.add_option("--accounts-out", accounts_out, "Write 'mailbox seed access_key' (hex) lines here")
      ->required();
  app.add_option("--in-flight", in_flight, "Store requests outstanding at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_flag("--time-open", time_open, "Afterwards, time opening the filled store once more");
  app.add_option("--json", json_out, "Write the figures as one JSON object to FILE");
  CLI11_PARSE(app, argc, argv);

  store::options options;
  options.directory = dir;
  options.max_queue_per_device = std::max<std::size_t>(per_account, 10'000);
  auto opened = store::open_rocksdb_store(options);
  if (!opened) {
    std::cerr << "fill_store: cannot open " << dir << ": " << opened.error().message() << "\n";
    return 1;
  }
  auto& s = **opened;
  const auto now = unix_now();

  const auto org_id = random_array<16>();
  auto org = store::wait_for<store::OrgRecord>([&](auto done) {
    s.create_org(org_id, "fill-" + hex(org_id).substr(0, 8), now, done);
  });
  if (!org) {
    std::cerr << "fill_store: cannot create an organisation: " << org.error().message() << "\n";
    return 1;
  }

  std::ofstream out(accounts_out);
  std::vector<store::mailbox_id> mailboxes;
  mailboxes.reserve(accounts);
  throttle gate(in_flight);
  const auto identity = crypto::signing_key::generate(crypto::system_random());
  const auto t0 = steady::now();
  for (std::size_t i = 0; i < accounts; ++i) {
    const auto seed = random_array<32>();
    const auto access_key = random_array<32>();
    const auto key = crypto::signing_key::from_seed(seed);
    const auto dh = random_array<32>();
    store::new_account a;
    a.mailbox = random_array<16>();
    const auto mailbox = a.mailbox;
    a.identity.set_signing_key(std::string(identity.public_key().begin(), identity.public_key().end()));
    a.identity.set_dh_key(std::string(dh.begin(), dh.end()));
    const auto sig = identity.sign(crypto::bytes_of(crypto::identity_dh_message(dh)));
    a.identity.set_dh_key_signature(std::string(sig.begin(), sig.end()));
    a.device_signing_key = key.public_key();
    a.access_key_hash = crypto::hash256(access_key);
    a.created_at = now;
    const auto invite_hash = random_array<32>();
    store::invite details{org_id, wire::ROLE_SURVIVOR, 0};
    gate.acquire();
    s.create_invite(invite_hash, details, now,
                    [&gate](store::result<void> r) { gate.release(r ? std::error_code() : r.error()); });
    gate.acquire();
    s.register_account(invite_hash, std::move(a), [&gate](store::result<store::AccountRecord> r) {
      gate.release(r ? std::error_code() : r.error());
    });
    mailboxes.push_back(mailbox);
    out << hex(mailbox) << ' ' << hex(seed) << ' ' << hex(access_key) << '\n';
  }
  if (auto ec = gate.drain()) {
    std::cerr << "fill_store: creating accounts failed: " << ec.message() << "\n";
    return 1;
  }
  out.close();
  const auto t1 = steady::now();

  std::mt19937_64 bytes(std::random_device{}());
  std::size_t queued = 0;
  for (std::size_t k = 0; k < per_account; ++k)
    for (const auto& mailbox : mailboxes) {
      std::string sealed(size, '\0');
      for (std::size_t off = 0; off < size; off += 8) {
        const auto v = bytes();
        std::memcpy(sealed.data() + off, &v, std::min<std::size_t>(8, size - off));
      }
      std::vector<store::device_envelope> envelopes;
      envelopes.push_back({1, std::move(sealed)});
      gate.acquire();
      s.enqueue(mailbox, random_array<16>(), std::move(envelopes), now,
                [&gate](store::result<std::vector<store::stored_envelope>> r) {
                  gate.release(r ? std::error_code() : r.error());
                });
      ++queued;
    }
  if (auto ec = gate.drain()) {
    std::cerr << "fill_store: queueing envelopes failed: " << ec.message() << "\n";
    return 1;
  }
  const auto t2 = steady::now();
  s.close();
  const auto t3 = steady::now();
  opened->reset();

  const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  nlohmann::json j;
  j["accounts"] = accounts;
  j["envelopes"] = queued;
  j["size"] = size;
  j["accounts_seconds"] = secs(t0, t1);
  j["envelopes_seconds"] = secs(t1, t2);
  j["envelopes_per_s"] = queued > 0 ? static_cast<double>(queued) / secs(t1, t2) : 0.0;
  j["close_seconds"] = secs(t2, t3);
  std::cerr << "fill_store: " << accounts << " accounts in " << secs(t0, t1) << " s, " << queued
            << " envelopes of " << size << " B in " << secs(t1, t2) << " s ("
            << j["envelopes_per_s"].get<double>() << "/s), closed in " << secs(t2, t3) << " s\n";

  if (time_open) {
    const auto o0 = steady::now();
    auto again = store::open_rocksdb_store(options);
    const auto o1 = steady::now();
    if (!again) {
      std::cerr << "fill_store: reopening failed: " << again.error().message() << "\n";
      return 1;
    }
    (*again)->close();
    j["open_seconds"] = secs(o0, o1);
    std::cerr << "fill_store: store opened again in " << secs(o0, o1) * 1e3 << " ms\n";
  }
  if (!json_out.empty()) {
    std::ofstream f(json_out);
    f << j.dump() << "\n";
  }
  return 0;
}
