// havend's frame decoder and every request handler, end to end: a real
// server in-process over a real RocksDB store, and per input one real
// WebSocket connection over loopback.
//
// Input: a flag byte (bit 0: log in as the registered device first; bit 1:
// once the frames are sent, the same device logs in on a second connection,
// which replaces the first), then length-prefixed frames (fixtures.hpp)
// sent as binary messages. The 16 bytes "HAVEN-FUZZ-MBOX!" stand for the
// registered mailbox. Every frame must get exactly one reply (request id 0
// when the frame does not parse or has id 0) or the server closes cleanly;
// then pushed envelopes are acked and a ping must be answered. A hang, a reply to nothing or a dropped
// connection aborts, so libFuzzer keeps the input.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <unistd.h>

#include "fixtures.hpp"
#include "haven/server/config.hpp"
#include "haven/server/invite_token.hpp"
#include "haven/server/server.hpp"
#include "haven/store/store.hpp"
#include "wire.pb.h"

namespace {

using namespace haven;
using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using steady = std::chrono::steady_clock;

constexpr std::uint64_t k_login_id = ~0ull;
constexpr std::uint64_t k_ping_id = ~0ull - 1;
constexpr std::uint64_t k_ack_id = 1ull << 63;  // + seq
constexpr auto k_input_deadline = 5s;

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "relay fuzz: %s\n", what.c_str());
  std::abort();
}

// One client connection. Every operation is asynchronous and bounded by the
// input's deadline: libFuzzer's timeout alarm (SIGALRM) interrupts blocking
// system calls, and Asio's blocking calls report EINTR as an error, where
// its reactor retries.
class connection {
 public:
  connection(unsigned short port, steady::time_point deadline) : ws_(ioc_), deadline_(deadline) {
    const auto connected = run("connect", [&](auto done) {
      beast::get_lowest_layer(ws_).async_connect({net::ip::make_address("127.0.0.1"), port}, done);
    });
    if (connected) bug("cannot connect: " + connected.message());
    ws_.read_message_max(64 << 20);
    const auto upgraded =
        run("handshake", [&](auto done) { ws_.async_handshake("127.0.0.1", "/v1/ws", done); });
    if (upgraded) bug("the WebSocket handshake failed: " + upgraded.message());
    ws_.binary(true);
  }

  bool send(std::string_view bytes) {
    return !run("write", [&](auto done) {
      ws_.async_write(net::buffer(bytes.data(), bytes.size()), done);
    });
  }

  bool send(const wire::ClientFrame& f) { return send(f.SerializeAsString()); }

  // The next frame, or nullopt once the connection has ended (`ended`).
  // A Batch is taken apart.
  std::optional<wire::ServerFrame> next() {
    if (!later_.empty()) {
      auto f = std::move(later_.front());
      later_.pop_front();
      return f;
    }
    buffer_.clear();
    ended = run("read", [&](auto done) { ws_.async_read(buffer_, done); });
    if (ended) return std::nullopt;
    wire::ServerFrame f;
    if (!f.ParseFromString(beast::buffers_to_string(buffer_.data()))) bug("a reply is not a ServerFrame");
    if (verbose) std::fprintf(stderr, "< %s\n", f.ShortDebugString().c_str());
    if (!f.has_batch()) return f;
    const auto count = f.batch().frames_size();
    if (count < 2 || count > 64) bug("a batch of " + std::to_string(count) + " frames");
    for (auto& inner : *f.mutable_batch()->mutable_frames()) {
      if (inner.has_batch() || inner.has_envelopes())
        bug("a batch holds " + inner.ShortDebugString());
      later_.push_back(std::move(inner));
    }
    return next();
  }

  void close() {
    run("close", [&](auto done) { ws_.async_close(websocket::close_code::normal, done); });
  }

  beast::error_code ended;
  // HAVEN_FUZZ_VERBOSE=1 prints every frame received (to read a reproducer).
  static inline const bool verbose = std::getenv("HAVEN_FUZZ_VERBOSE") != nullptr;

 private:
  // Runs one operation to its end; one that has not ended by the deadline is a hang.
  beast::error_code run(const char* what, const auto& start) {
    bool done = false;
    beast::error_code result;
    start([&](beast::error_code ec, auto&&...) {
      done = true;
      result = ec;
    });
    ioc_.restart();
    ioc_.run_until(deadline_);
    if (!done) bug(std::string(what) + " not finished by the deadline (hang)");
    return result;
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  steady::time_point deadline_;
  beast::flat_buffer buffer_;
  std::deque<wire::ServerFrame> later_;  // the rest of a Batch
};

struct relay_fixture {
  std::filesystem::path dir;
  std::unique_ptr<store::store> store;
  std::unique_ptr<server::server> relay;
  std::thread thread;
  unsigned short port = 0;
  std::string mailbox;  // of the account registered at start-up
};
relay_fixture* fixture = nullptr;

std::string as_string(std::span<const std::uint8_t> b) { return fuzz::text(b); }

wire::ClientFrame auth_frame(const wire::AuthChallenge& c) {
  wire::ClientFrame f;
  f.set_request_id(k_login_id);
  f.mutable_auth()->set_mailbox_id(fixture->mailbox);
  f.mutable_auth()->set_device_id(1);
  f.mutable_auth()->set_signature(as_string(fuzz::relay_device().sign(
      fuzz::bytes(crypto::auth_message(fuzz::bytes(c.server_id()), fuzz::bytes(c.nonce()))))));
  return f;
}

// Creates an organisation and an invite in the store, then registers the
// fuzzed device through the protocol, as a client would.
void register_account(relay_fixture& f) {
  store::org_id org{};
  org.fill(1);
  if (!store::wait_for<store::OrgRecord>([&](auto done) { f.store->create_org(org, "Fuzz", 0, done); }))
    bug("cannot create the organisation");
  const auto token = server::make_invite_token();
  store::invite details{org, wire::ROLE_SURVIVOR, 0};
  const auto hash = server::invite_token_hash(*server::normalise_invite_token(token));
  if (!store::wait_for<void>([&](auto done) { f.store->create_invite(hash, details, 0, done); }))
    bug("cannot create the invite");

  connection c(f.port, steady::now() + 10s);
  const auto first = c.next();
  if (!first || !first->has_challenge()) bug("no challenge at registration");
  const auto challenge = first->challenge();
  const auto identity = fuzz::relay_identity();
  const auto device = fuzz::relay_device();
  const auto dh = as_string(fuzz::relay_dh().public_key());
  wire::ClientFrame frame;
  frame.set_request_id(1);
  auto* r = frame.mutable_register_();
  r->set_invite_token(token);
  r->mutable_identity()->set_signing_key(as_string(identity.public_key()));
  r->mutable_identity()->set_dh_key(dh);
  r->mutable_identity()->set_dh_key_signature(
      as_string(identity.sign(fuzz::bytes(crypto::identity_dh_message(fuzz::bytes(dh))))));
  r->set_device_signing_key(as_string(device.public_key()));
  r->set_access_key(fuzz::relay_access_key);
  r->set_signature(as_string(device.sign(fuzz::bytes(crypto::register_message(
      fuzz::bytes(challenge.server_id()), fuzz::bytes(challenge.nonce()), token)))));
  c.send(frame);
  const auto reply = c.next();
  if (!reply || !reply->has_registered()) bug("cannot register the fuzzed device");
  f.mailbox = reply->registered().mailbox_id();
  c.close();
}

void shut_down() {
  fixture->relay->stop();
  fixture->thread.join();
  fixture->relay.reset();
  fixture->store->close();
  fixture->store.reset();
  std::error_code ignored;
  std::filesystem::remove_all(fixture->dir, ignored);
  delete fixture;
}

// Reads until every expected reply has come or the connection ended.
// Pushed envelopes are collected for acking.
void await(connection& c, std::map<std::uint64_t, int>& expected,
           std::vector<wire::Envelope>& pushed) {
  std::erase_if(expected, [](const auto& e) { return e.second == 0; });
  while (!expected.empty()) {
    auto f = c.next();
    if (!f) return;
    const auto id = f->request_id();
    if (id == 0 && f->has_envelopes()) {
      const auto count = f->envelopes().envelopes_size();
      if (count < 1 || count > 64) bug("a push of " + std::to_string(count) + " envelopes");
      for (const auto& e : f->envelopes().envelopes()) {
        if (e.seq() == 0 || e.envelope_id().size() != 16) bug("a malformed push");
        if (!pushed.empty() && e.seq() <= pushed.back().seq()) bug("a push out of order");
        pushed.push_back(e);
      }
      continue;
    }
    if (id == 0 && f->has_queue_drained()) continue;
    if (id == 0 && !f->has_error()) bug("an unasked frame: " + f->ShortDebugString());
    auto it = expected.find(id);
    if (it == expected.end()) bug("a reply to no request: " + f->ShortDebugString());
    if (--it->second == 0) expected.erase(it);
  }
}

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  crypto::ensure_sodium();
  spdlog::set_level(spdlog::level::warn);
  // Not one line per frame with a non-UTF-8 string field (ours and havend's
  // parse both log it).
  google::protobuf::SetLogHandler(nullptr);
  fixture = new relay_fixture;
  fixture->dir = std::filesystem::temp_directory_path() / ("haven-fuzz-relay-" + std::to_string(getpid()));
  std::filesystem::remove_all(fixture->dir);
  store::options options;
  options.directory = fixture->dir;
  auto opened = store::open_rocksdb_store(options);
  if (!opened) bug("cannot open the store: " + opened.error().message());
  fixture->store = std::move(*opened);

  server::config cfg;
  cfg.port = 0;
  cfg.data_dir = fixture->dir;
  const server::rate unlimited{1e9, 1e9};
  cfg.connections_per_address = cfg.logins_per_address = unlimited;
  cfg.sends_per_mailbox = cfg.prekey_fetches_per_mailbox = unlimited;
  fixture->relay = std::make_unique<server::server>(cfg, *fixture->store);
  const auto address = fixture->relay->listen();
  fixture->port = static_cast<unsigned short>(std::stoi(address.substr(address.rfind(':') + 1)));
  fixture->thread = std::thread([] { fixture->relay->run(); });
  register_account(*fixture);
  std::atexit(shut_down);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool log_in = (data[0] & 1) != 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  replace_all(input, fuzz::relay_mailbox_placeholder, fixture->mailbox);
  const auto deadline = steady::now() + k_input_deadline;

  connection c(fixture->port, deadline);
  const auto challenge = c.next();
  if (!challenge || !challenge->has_challenge()) bug("no challenge");
  if (log_in) {
    c.send(auth_frame(challenge->challenge()));
    const auto reply = c.next();
    if (!reply || !reply->has_authenticated()) bug("the registered device cannot log in");
  }

  std::map<std::uint64_t, int> expected;
  std::vector<wire::Envelope> pushed;
  for (const auto frame : fuzz::split_frames(input)) {
    wire::ClientFrame parsed;
    const bool ok = parsed.ParseFromArray(frame.data(), static_cast<int>(frame.size()));
    ++expected[ok ? parsed.request_id() : 0];
    if (!c.send(frame)) break;
  }
  std::optional<connection> newer;
  if ((data[0] & 2) != 0) {
    // Closes the first connection (when logged in) once its requests are answered.
    newer.emplace(fixture->port, deadline);
    const auto second = newer->next();
    if (!second || !second->has_challenge()) bug("no challenge on the second connection");
    newer->send(auth_frame(second->challenge()));
  }
  await(c, expected, pushed);

  // Ack what was pushed (a later input starts from an empty queue), then a
  // ping, until a round brings nothing new.
  std::set<std::uint64_t> acked;
  for (bool more = true; more && !c.ended;) {
    const auto before = pushed.size();
    more = false;
    for (std::size_t i = 0; i < before; ++i) {
      if (!acked.insert(pushed[i].seq()).second) continue;
      wire::ClientFrame ack;
      ack.set_request_id(k_ack_id + pushed[i].seq());
      auto* delivered = ack.mutable_ack()->add_envelopes();
      delivered->set_seq(pushed[i].seq());
      delivered->set_envelope_id(pushed[i].envelope_id());
      ++expected[ack.request_id()];
      c.send(ack);
      more = true;
    }
    wire::ClientFrame ping;
    ping.set_request_id(k_ping_id);
    ping.mutable_ping();
    ++expected[k_ping_id];
    c.send(ping);
    await(c, expected, pushed);
    more = more || pushed.size() > before;
  }

  if (!c.ended) {
    c.close();
  } else if (c.ended != websocket::error::closed) {
    bug("the server dropped the connection without a close: " + c.ended.message());
  }
  if (newer) {
    const auto reply = newer->next();
    if (!reply || !reply->has_authenticated()) bug("the second log-in failed");
    newer->close();
  }
  return 0;
}
