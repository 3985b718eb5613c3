// The haven CLI end to end: real havend on loopback, real RocksDB, the real
// haven binary, profiles on disk.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <rocksdb/db.h>

#include "haven/crypto/encoding.hpp"
#include "haven/crypto/verify.hpp"
#include "haven/server/invite_token.hpp"
#include "haven/store/store.hpp"
#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

namespace {

struct cli_fixture {
  temp_dir dir{"haven-cli"};
  havend_process havend{dir.path() / "server-data"};
  std::string caseworker_invite, survivor_invite, spare_invite;

  cli_fixture() {
    caseworker_invite = havend.invite("caseworker");
    survivor_invite = havend.invite("survivor");
    spare_invite = havend.invite("survivor");
    havend.start();
    setenv("HAVEN_PASSPHRASE", "a long shared test passphrase", 1);
  }

  [[nodiscard]] std::string url() const { return "ws://127.0.0.1:" + std::to_string(havend.port()); }
  [[nodiscard]] std::filesystem::path profile(const std::string& who) const { return dir.path() / who; }

  command_result haven(const std::string& who, std::vector<std::string> args) const {
    std::vector<std::string> argv{HAVEN_CLI_PATH, "--profile", profile(who).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir.path() / (who + ".stderr"));
  }

  void init(const std::string& who, const std::string& invite) const {
    auto r = haven(who, {"init", "--server", url(), "--invite", invite, "--name", who});
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
  }

  std::string code(const std::string& who) const {
    auto r = haven(who, {"code"});
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, r.out.find('\n'));
  }

  // Both register and hold each other's codes.
  void pair() const {
    init("worker", caseworker_invite);
    init("client", survivor_invite);
    REQUIRE(haven("worker", {"contact", "add", "client", code("client")}).exit_code == 0);
    REQUIRE(haven("client", {"contact", "add", "worker", code("worker")}).exit_code == 0);
  }

  void send(const std::string& from, const std::string& to, const std::string& text) const {
    auto r = haven(from, {"send", to, text});
    REQUIRE(r.exit_code == 0);
  }

  std::vector<std::string> inbox(const std::string& who) const {
    auto r = haven(who, {"inbox"});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
};

// Every file under `root`, read whole.
std::string all_bytes_under(const std::filesystem::path& root) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    all += read_text(entry.path());
  }
  return all;
}

// The mailbox id inside a contact code (clients/core/src/contact_code.hpp).
std::string mailbox_of(const std::string& code) {
  const auto bytes = crypto::from_base64url(code);
  REQUIRE(bytes.has_value());
  return std::string(bytes->begin() + 1, bytes->begin() + 17);
}

}  // namespace

TEST_CASE("a caseworker and a survivor talk both ways, offline messages arrive in order",
          "[cli]") {
  cli_fixture f;
  f.pair();
  f.send("worker", "client", "Hello, it is Sam from Riverside. Is it safe to talk?");
  f.send("worker", "client", "Reply STOP at any time.");
  auto got = f.inbox("client");
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "from worker: Hello, it is Sam from Riverside. Is it safe to talk?");
  CHECK(got[1] == "from worker: Reply STOP at any time.");
  CHECK(f.inbox("client").empty());  // acked: nothing comes twice

  for (int i = 1; i <= 5; ++i) f.send("client", "worker", "reply " + std::to_string(i));
  auto replies = f.inbox("worker");
  REQUIRE(replies.size() == 5);
  for (int i = 1; i <= 5; ++i) CHECK(replies[static_cast<std::size_t>(i - 1)] == "from client: reply " + std::to_string(i));

  auto history = f.haven("client", {"history", "worker", "--json"});
  REQUIRE(history.exit_code == 0);
  CHECK(history.out.find("\"outgoing\":true") != std::string::npos);
  CHECK(history.out.find("Is it safe to talk?") != std::string::npos);
}

TEST_CASE("a restart of havend mid-conversation loses nothing", "[cli]") {
  cli_fixture f;
  f.pair();
  f.send("worker", "client", "before the restart");
  SECTION("clean stop") { REQUIRE(f.havend.stop() == 0); }
  SECTION("crash") { f.havend.kill_now(); }
  f.havend.start();  // same port
  f.send("worker", "client", "after the restart");
  auto got = f.inbox("client");
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "from worker: before the restart");
  CHECK(got[1] == "from worker: after the restart");
  f.send("client", "worker", "still here");
  CHECK(f.inbox("worker") == std::vector<std::string>{"from client: still here"});
}

TEST_CASE("the same envelope delivered twice is shown once", "[cli]") {
  cli_fixture f;
  f.pair();
  f.send("worker", "client", "only once, please");
  REQUIRE(f.havend.stop() == 0);
  {
    // A sender's retry after a lost reply: the same envelope queued again.
    store::options opts;
    opts.directory = f.havend.data_dir();
    auto db = store::open_rocksdb_store(opts);
    REQUIRE(db.has_value());
    store::device_address client{};
    const auto mailbox = mailbox_of(f.code("client"));
    std::copy(mailbox.begin(), mailbox.end(), client.mailbox.begin());
    client.device = 1;
    auto queued = (*db)->read_queue(client, 0, 10);
    REQUIRE(queued.has_value());
    REQUIRE(queued->size() == 1);
    wire::Envelopes frame;
    REQUIRE(frame.ParseFromString(queued->front().frame.bytes()));
    REQUIRE(frame.envelopes_size() == 1);
    const auto& stored = frame.envelopes(0);
    store::envelope_id id{};
    std::copy_n(stored.envelope_id().begin(), id.size(), id.begin());
    auto again = store::wait_for<std::vector<store::stored_envelope>>([&](auto done) {
      (*db)->enqueue(client.mailbox, id, {{1, stored.sealed()}}, 1'700'000'000, done);
    });
    REQUIRE(again.has_value());
    REQUIRE((*db)->read_queue(client, 0, 10)->size() == 2);
  }
  f.havend.start();
  CHECK(f.inbox("client") == std::vector<std::string>{"from worker: only once, please"});
  CHECK(f.inbox("client").empty());  // and the duplicate was acked too
}

TEST_CASE("a message's text is nowhere on disk: not on the server, not in either profile",
          "[cli]") {
  cli_fixture f;
  f.pair();
  const std::string marker = "MARKER-" + std::to_string(std::random_device{}()) + "-SAFEWORD";
  f.send("worker", "client", marker);
  f.send("client", "worker", marker + "-reply");
  REQUIRE(f.inbox("client").size() == 1);
  REQUIRE(f.inbox("worker").size() == 1);
  f.send("worker", "client", marker + "-undelivered");  // still queued on the server
  REQUIRE(f.havend.stop() == 0);
  const auto server = all_bytes_under(f.havend.data_dir());
  const auto log = f.havend.log();
  const auto worker = all_bytes_under(f.profile("worker"));
  const auto client = all_bytes_under(f.profile("client"));
  for (const auto& where : {server, log, worker, client}) {
    CHECK(where.find("MARKER-") == std::string::npos);
    CHECK(where.find("SAFEWORD") == std::string::npos);
  }
  // Profiles are sealed whole: not even the organisation's name shows.
  CHECK(worker.find("Test Service") == std::string::npos);
  CHECK(client.find("Test Service") == std::string::npos);
  // The passphrase is not on disk either.
  CHECK(all_bytes_under(f.profile("worker")).find("shared test passphrase") == std::string::npos);
}

// Every record of a stopped havend's RocksDB directory by column family,
// as a reader of a copied directory gets them (decompressed, unlike the
// raw files).
using records = std::map<std::string, std::vector<std::pair<std::string, std::string>>>;
records all_records_in(const std::filesystem::path& directory) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies({}, directory.string(), &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const auto& n : names) families.emplace_back(n, rocksdb::ColumnFamilyOptions{});
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly({}, directory.string(), families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  records out;
  for (auto* h : handles) {
    auto& family = out[h->GetName()];
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, h));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      family.emplace_back(it->key().ToString(), it->value().ToString());
    REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  }
  return out;
}

bool holds(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST_CASE("a copy of the data directory holds what SECURITY.md lists, and no more",
          "[cli][security]") {
  cli_fixture f;
  f.pair();
  const std::string marker = "MARKER-" + std::to_string(std::random_device{}());
  f.send("worker", "client", marker + "-read");
  REQUIRE(f.inbox("client").size() == 1);
  f.send("worker", "client", marker + "-queued");  // still on the server
  REQUIRE(f.havend.stop() == 0);
  const auto by_family = all_records_in(f.havend.data_dir());
  std::string everything;
  for (const auto& [family, rows] : by_family)
    for (const auto& [key, value] : rows) everything.append(key).append(value);
  REQUIRE(everything.size() > 1000);

  // Layout in clients/core/src/contact_code.hpp.
  const auto code_bytes = [](const std::string& code) {
    const auto b = crypto::from_base64url(code);
    REQUIRE(b.has_value());
    return std::string(b->begin(), b->end());
  };
  const auto worker = code_bytes(f.code("worker"));
  const auto client = code_bytes(f.code("client"));
  const auto mailbox = [](const std::string& c) { return c.substr(1, 16); };
  const auto identity = [](const std::string& c) { return c.substr(17, 32); };
  const auto access_key = [](const std::string& c) { return c.substr(145, 32); };
  const auto hash = [](const std::string& s) {
    const auto h = crypto::hash256(crypto::bytes_of(s));
    return std::string(reinterpret_cast<const char*>(h.data()), h.size());
  };

  // What it holds: accounts with their public identity keys, and the hash
  // of each access key, never the key itself.
  CHECK(holds(everything, mailbox(client)));
  CHECK(holds(everything, identity(client)));
  CHECK(holds(everything, hash(access_key(client))));
  CHECK_FALSE(holds(everything, access_key(client)));
  CHECK_FALSE(holds(everything, access_key(worker)));

  // The queued envelope: neither its content nor who sent it.
  std::size_t queued = 0;
  for (const auto& [key, value] : by_family.at("queue")) {
    if (!key.starts_with(mailbox(client)) || key.size() <= 20) continue;  // counters
    ++queued;
    CHECK_FALSE(holds(value, mailbox(worker)));
    CHECK_FALSE(holds(value, identity(worker)));
  }
  CHECK(queued == 1);
  CHECK_FALSE(holds(everything, marker));

  // No invite token, passphrase or IP address.
  CHECK_FALSE(holds(everything, *server::normalise_invite_token(f.spare_invite)));
  CHECK_FALSE(holds(everything, f.spare_invite));
  CHECK_FALSE(holds(everything, "a long shared test passphrase"));
  CHECK_FALSE(holds(everything, "127.0.0.1"));
  CHECK_FALSE(holds(everything, std::string("\x7f\x00\x00\x01", 4)));
}

TEST_CASE("without the contact code nobody can deliver to a mailbox", "[cli]") {
  cli_fixture f;
  f.pair();
  const auto code = f.code("client");

  SECTION("a stranger who learned the mailbox id but not the access key") {
    test_device mallory;
    ws_client c(f.havend.port());
    REQUIRE(mallory.register_on(c, f.spare_invite).has_registered());
    test_device target;
    target.mailbox = mailbox_of(code);
    auto reply = c.request(test_device::send_frame(target, "let me in"));
    REQUIRE(reply.has_error());
    CHECK(reply.error().code() == wire::ERROR_ACCESS_DENIED);
  }
  SECTION("a damaged code is refused") {
    f.init("mallory", f.spare_invite);
    std::string damaged = code;
    damaged[100] = damaged[100] == 'A' ? 'B' : 'A';
    auto r = f.haven("mallory", {"contact", "add", "client", damaged});
    CHECK(r.exit_code == 1);
  }
  CHECK(f.inbox("client").empty());
}

TEST_CASE("safety numbers match on both sides and change with the identity", "[cli]") {
  cli_fixture f;
  f.pair();
  auto a = f.haven("worker", {"safety-number", "client"});
  auto b = f.haven("client", {"safety-number", "worker"});
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  CHECK(a.out == b.out);
  CHECK(a.out.size() == 12 * 5 + 11 + 1);  // 12 groups of 5 digits, spaces, newline

  // The survivor starts over (new phone): a new identity, a new number.
  REQUIRE(f.haven("client", {"panic"}).exit_code == 0);
  f.init("client", f.spare_invite);
  REQUIRE(f.haven("worker", {"contact", "add", "client-new", f.code("client")}).exit_code == 0);
  auto c = f.haven("worker", {"safety-number", "client-new"});
  REQUIRE(c.exit_code == 0);
  CHECK(c.out != a.out);
}

TEST_CASE("panic erases the profile at once and later commands find none", "[cli]") {
  cli_fixture f;
  f.pair();
  f.send("worker", "client", "something private");
  auto r = f.haven("client", {"panic"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK_FALSE(std::filesystem::exists(f.profile("client")));
  CHECK(f.haven("client", {"inbox"}).exit_code == 3);
  CHECK(f.haven("client", {"code"}).exit_code == 3);
}

TEST_CASE("errors are clear and exit codes tell them apart", "[cli]") {
  cli_fixture f;
  f.pair();
  SECTION("wrong passphrase") {
    setenv("HAVEN_PASSPHRASE", "not it", 1);
    CHECK(f.haven("client", {"inbox"}).exit_code == 4);
  }
  SECTION("unknown contact") {
    auto r = f.haven("client", {"send", "nobody", "hi"});
    CHECK(r.exit_code == 1);
  }
  SECTION("refused invite") {
    auto r = f.haven("again", {"init", "--server", f.url(), "--invite", f.caseworker_invite,
                                "--name", "x"});
    CHECK(r.exit_code == 1);
    CHECK_FALSE(std::filesystem::exists(f.profile("again") / "profile.vault"));
  }
  SECTION("server unreachable") {
    REQUIRE(f.havend.stop() == 0);
    CHECK(f.haven("client", {"send", "worker", "hi"}).exit_code == 5);
    CHECK(f.haven("client", {"inbox"}).exit_code == 5);
  }
  SECTION("a reply to someone whose code we do not hold") {
    f.init("third", f.spare_invite);
    REQUIRE(f.haven("third", {"contact", "add", "client", f.code("client")}).exit_code == 0);
    f.send("third", "client", "hello from a third");
    auto got = f.inbox("client");
    REQUIRE(got.size() == 1);
    CHECK(got[0].starts_with("from unknown-"));
    const auto name = got[0].substr(5, got[0].find(':') - 5);
    CHECK(f.haven("client", {"send", name, "who are you?"}).exit_code == 1);
  }
}

TEST_CASE("listen prints messages as they arrive", "[cli]") {
  cli_fixture f;
  f.pair();
  command_result listened;
  std::thread listener([&] {
    listened = f.haven("client", {"listen", "--count", "3", "--seconds", "60"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 1; i <= 3; ++i) f.send("worker", "client", "live " + std::to_string(i));
  listener.join();
  CHECK(listened.exit_code == 0);
  CHECK(listened.out == "from worker: live 1\nfrom worker: live 2\nfrom worker: live 3\n");
}

TEST_CASE("a conversation over wss:// trusting the service's CA, and without it the CLI refuses",
          "[cli][tls]") {
  temp_dir dir{"haven-cli-tls"};
  // A self-signed certificate for 127.0.0.1 (no DNS name), given to the CLI
  // as the CA to trust.
  const auto cert = (dir.path() / "relay.pem").string(), key = (dir.path() / "relay.key").string();
  REQUIRE(run_command({HAVEN_OPENSSL_PATH, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                       "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                       "30", "-subj", "/CN=Haven CLI test", "-addext",
                       "subjectAltName=IP:127.0.0.1"})
              .exit_code == 0);
  havend_process havend(dir.path() / "server-data", {"--tls-cert", cert, "--tls-key", key});
  const auto worker_invite = havend.invite("caseworker"), client_invite = havend.invite();
  const auto port = std::to_string(havend.start());
  setenv("HAVEN_PASSPHRASE", "a long shared test passphrase", 1);
  const auto haven = [&](const std::string& who, std::vector<std::string> args) {
    args.insert(args.begin(), {HAVEN_CLI_PATH, "--profile", (dir.path() / who).string()});
    return run_command(args, dir.path() / (who + ".stderr"));
  };
  const auto stderr_of = [&](const std::string& who) {
    return read_text(dir.path() / (who + ".stderr"));
  };
  const std::vector<std::string> init_worker{"init", "--server", "wss://127.0.0.1:" + port,
                                             "--invite", worker_invite, "--name", "worker"};

  // The system's trust store does not know this certificate.
  CHECK(haven("worker", init_worker).exit_code == 5);
  CHECK(stderr_of("worker").find("certificate is not trusted") != std::string::npos);
  // Trusted, but the certificate does not name "localhost".
  CHECK(haven("worker", {"--ca-file", cert, "init", "--server", "wss://localhost:" + port,
                         "--invite", worker_invite, "--name", "worker"})
            .exit_code == 5);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "worker" / "profile.vault"));

  auto worker = init_worker;
  worker.insert(worker.begin(), {"--ca-file", cert});
  REQUIRE(haven("worker", worker).exit_code == 0);
  REQUIRE(haven("client", {"--ca-file", cert, "init", "--server", "wss://127.0.0.1:" + port,
                           "--invite", client_invite, "--name", "client"})
              .exit_code == 0);
  const auto code = [&](const std::string& who) {
    const auto r = haven(who, {"code"});
    return r.out.substr(0, r.out.find('\n'));
  };
  REQUIRE(haven("worker", {"contact", "add", "client", code("client")}).exit_code == 0);
  REQUIRE(haven("client", {"contact", "add", "worker", code("worker")}).exit_code == 0);
  REQUIRE(haven("worker", {"--ca-file", cert, "send", "client", "over TLS"}).exit_code == 0);
  const auto inbox = haven("client", {"--ca-file", cert, "inbox"});
  CHECK(inbox.exit_code == 0);
  CHECK(inbox.out == "from worker: over TLS\n");
  CHECK(haven("client", {"--ca-file", cert, "send", "worker", "received"}).exit_code == 0);
  CHECK(haven("worker", {"--ca-file", cert, "inbox"}).out == "from client: received\n");
}
