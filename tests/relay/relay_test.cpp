// Integration tests: a real havend process on an ephemeral loopback port,
// a fresh RocksDB directory, real WebSocket connections.

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <fstream>
#include <set>
#include <thread>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

namespace {

struct relay_fixture {
  temp_dir dir{"haven-relay"};
  havend_process havend;

  explicit relay_fixture(std::vector<std::string> flags = {})
      : havend(dir.path() / "data", std::move(flags)) {}

  // Registers `d` with a fresh invite; havend must be stopped (admin) first,
  // so invites are made before start().
  void start() { havend.start(); }

  ws_client connect() { return ws_client(havend.port()); }

  // A registered device whose connection is closed again.
  void enroll(test_device& d, const std::string& invite) {
    auto c = connect();
    auto reply = d.register_on(c, invite);
    REQUIRE(reply.has_registered());
  }

  void start_with(std::initializer_list<test_device*> devices) {
    start_with_accounts(havend, devices);
  }
};

wire::Envelope expect_envelope(ws_client& c) {
  auto f = c.next();
  REQUIRE(f.has_value());
  INFO("frame: " << f->ShortDebugString());
  REQUIRE(f->has_envelopes());
  return f->envelopes().envelopes(0);
}

void expect_drained(ws_client& c) {
  auto f = c.next();
  REQUIRE(f.has_value());
  INFO("frame: " << f->ShortDebugString());
  CHECK(f->has_queue_drained());
}

wire::ErrorCode error_of(const wire::ServerFrame& f) {
  INFO("frame: " << f.ShortDebugString());
  REQUIRE(f.has_error());
  return f.error().code();
}

}  // namespace

TEST_CASE("register with a valid invite, and an invalid or reused one is refused", "[relay]") {
  relay_fixture f;
  const auto invite = f.havend.invite("caseworker");
  f.start();

  test_device alice;
  auto c = f.connect();
  CHECK(c.challenge.server_id().size() == 16);
  CHECK(c.challenge.nonce().size() == 32);
  auto reply = alice.register_on(c, invite);
  REQUIRE(reply.has_registered());
  CHECK(reply.registered().mailbox_id().size() == 16);
  CHECK(reply.registered().device_id() == 1);
  CHECK(reply.registered().role() == wire::ROLE_CASEWORKER);
  CHECK(reply.registered().organisation() == "Test Service");
  // Registered means logged in.
  CHECK(c.request(test_device::ping_frame()).has_pong());

  test_device bob;
  auto c2 = f.connect();
  CHECK(error_of(bob.register_on(c2, invite)) == wire::ERROR_INVALID_INVITE);
  auto c3 = f.connect();
  CHECK(error_of(bob.register_on(c3, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")) ==
        wire::ERROR_INVALID_INVITE);
  auto c4 = f.connect();
  CHECK(error_of(bob.register_on(c4, "not a token")) == wire::ERROR_INVALID_INVITE);
}

TEST_CASE("a registration signed by another key is refused", "[relay]") {
  relay_fixture f;
  const auto invite = f.havend.invite();
  f.start();
  test_device d, impostor;
  auto c = f.connect();
  auto frame = d.register_frame(c.challenge, invite);
  frame.mutable_register_()->set_device_signing_key(key_string(impostor.key.public_key()));
  CHECK(error_of(c.request(frame)) == wire::ERROR_AUTH_FAILED);

  // The invite was not spent by the failed attempt.
  auto c2 = f.connect();
  CHECK(d.register_on(c2, invite).has_registered());
}

TEST_CASE("log in with the device key, and a wrong signature or a replayed one is refused",
          "[relay]") {
  relay_fixture f;
  const auto invite = f.havend.invite();
  f.start();
  test_device d;
  f.enroll(d, invite);

  auto good = f.connect();
  const auto captured = d.auth_frame(good.challenge);
  auto reply = good.request(captured);
  REQUIRE(reply.has_authenticated());
  CHECK(reply.authenticated().role() == wire::ROLE_SURVIVOR);

  SECTION("a replayed signature fails against a new challenge") {
    auto other = f.connect();
    CHECK(other.challenge.nonce() != good.challenge.nonce());
    CHECK(error_of(other.request(captured)) == wire::ERROR_AUTH_FAILED);
  }
  SECTION("a wrong signature fails, and the spent challenge cannot be retried") {
    auto c = f.connect();
    auto bad = d.auth_frame(c.challenge);
    (*bad.mutable_auth()->mutable_signature())[5] ^= 1;
    CHECK(error_of(c.request(bad)) == wire::ERROR_AUTH_FAILED);
    CHECK(error_of(c.request(d.auth_frame(c.challenge))) == wire::ERROR_AUTH_FAILED);
  }
  SECTION("an unknown mailbox fails the same way") {
    test_device stranger;
    stranger.mailbox = random_string(16);
    auto c = f.connect();
    CHECK(error_of(stranger.login_on(c)) == wire::ERROR_AUTH_FAILED);
  }
}

TEST_CASE("requests before log-in are refused", "[relay]") {
  relay_fixture f;
  f.start();
  test_device d;
  d.mailbox = random_string(16);
  auto c = f.connect();
  CHECK(error_of(c.request(test_device::ping_frame())) == wire::ERROR_NOT_AUTHENTICATED);
  CHECK(error_of(c.request(test_device::send_frame(d, "x"))) == wire::ERROR_NOT_AUTHENTICATED);
  wire::Envelope any;
  any.set_seq(1);
  any.set_envelope_id(random_string(16));
  CHECK(error_of(c.request(test_device::ack_frame(any))) == wire::ERROR_NOT_AUTHENTICATED);
}

TEST_CASE("envelopes sent to an offline device arrive in order, and an ack deletes them",
          "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});

  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  expect_drained(a);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(random_string(16));
    auto reply = a.request(test_device::send_frame(bob, "sealed " + std::to_string(i), ids.back()));
    REQUIRE(reply.has_sent());
  }

  {
    auto b = f.connect();
    REQUIRE(bob.login_on(b).has_authenticated());
    for (int i = 0; i < 5; ++i) {
      auto e = expect_envelope(b);
      CHECK(e.seq() == static_cast<std::uint64_t>(i + 1));
      CHECK(e.envelope_id() == ids[static_cast<std::size_t>(i)]);
      CHECK(e.sealed() == "sealed " + std::to_string(i));
      CHECK(e.received_at() % 60 == 0);
      if (i < 3) REQUIRE(b.request(test_device::ack_frame(e)).has_acked());
    }
    expect_drained(b);
  }
  {
    // The two unacked envelopes come again, and only they; one ack takes
    // both, and names seq 1, acked before, as not there.
    auto b = f.connect();
    REQUIRE(bob.login_on(b).has_authenticated());
    std::vector<wire::Envelope> again;
    for (int i = 3; i < 5; ++i) {
      again.push_back(expect_envelope(b));
      CHECK(again.back().envelope_id() == ids[static_cast<std::size_t>(i)]);
    }
    expect_drained(b);
    wire::Envelope stale;
    stale.set_seq(1);
    stale.set_envelope_id(ids[0]);
    auto reply = b.request(test_device::ack_frame({again[0], stale, again[1]}));
    REQUIRE(reply.has_acked());
    CHECK(std::vector<std::uint64_t>(reply.acked().not_found().begin(),
                                     reply.acked().not_found().end()) ==
          std::vector<std::uint64_t>{1});
  }
  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  expect_drained(b);
}

TEST_CASE("a backlog comes many envelopes to a frame, in order, no frame over the size limit",
          "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  expect_drained(a);
  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) sent.push_back("small " + std::to_string(i));
  for (int i = 0; i < 5; ++i) sent.push_back(std::string(100 * 1024, static_cast<char>('A' + i)));
  for (const auto& sealed : sent)
    REQUIRE(a.request(test_device::send_frame(bob, sealed)).has_sent());

  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  const auto got = test_device::take_queue(b);
  REQUIRE(got.size() == sent.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("envelope " << i);
    CHECK(got[i].seq() == i + 1);
    CHECK(got[i].sealed() == sent[i]);
  }
  // 200 small ones in a few frames; two 100 KiB ones fit in a 256 KiB
  // frame, three do not.
  CHECK(b.envelope_frames < 20);
  CHECK(b.most_envelopes_per_frame > 1);
  CHECK(b.most_envelopes_per_frame <= 64);
  CHECK(b.largest_envelope_frame > 200 * 1024);
  CHECK(b.largest_envelope_frame <= 256 * 1024 + 16);
}

TEST_CASE("replies waiting together come as one Batch, and every request is answered once",
          "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  // Written before any reply is read, so replies pile up behind the write
  // in flight. Every tenth is refused (no access key), so errors are
  // batched with the rest.
  constexpr std::uint64_t count = 256;
  test_device forged;
  forged.mailbox = bob.mailbox;
  for (std::uint64_t id = 1; id <= count; ++id) {
    auto frame = test_device::send_frame(id % 10 == 0 ? forged : bob, "pipelined");
    frame.set_request_id(id);
    a.send(frame);
  }
  std::set<std::uint64_t> answered;
  while (answered.size() < count) {
    auto r = a.next();
    REQUIRE(r.has_value());
    INFO("frame: " << r->ShortDebugString());
    if (r->request_id() == 0) {
      CHECK(r->has_queue_drained());
      continue;
    }
    REQUIRE(answered.insert(r->request_id()).second);
    REQUIRE(r->request_id() <= count);
    if (r->request_id() % 10 == 0)
      CHECK(error_of(*r) == wire::ERROR_ACCESS_DENIED);
    else
      CHECK(r->has_sent());
  }
  CHECK(a.batches > 0);
  CHECK(a.most_frames_per_batch >= 2);
  CHECK(a.most_frames_per_batch <= 64);
  CHECK(a.largest_batch <= 256 * 1024 + 16);

  // All the accepted ones are stored, once each.
  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  CHECK(test_device::take_queue(b).size() == count - count / 10);
}

TEST_CASE("envelopes for a connected device are pushed at once, one by one or in a burst",
          "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  auto a = f.connect();
  auto b = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  REQUIRE(bob.login_on(b).has_authenticated());
  expect_drained(a);
  expect_drained(b);
  SECTION("one by one") {
    for (int i = 0; i < 300; ++i)  // more than the delivery window, acked as they come
      REQUIRE(a.request(test_device::send_frame(bob, "live " + std::to_string(i))).has_sent());
    for (int i = 0; i < 300; ++i) {
      auto e = expect_envelope(b);
      CHECK(e.sealed() == "live " + std::to_string(i));
      REQUIRE(b.request(test_device::ack_frame(e)).has_acked());
    }
  }
  SECTION("in a burst, whole and in order") {
    // Sent without waiting, so the store writes many in one batch and
    // bob's connection is handed several pushes at a time.
    constexpr int k_burst = 400;
    for (int i = 0; i < k_burst; ++i) {
      auto send = test_device::send_frame(bob, "burst " + std::to_string(i));
      send.set_request_id(static_cast<std::uint64_t>(i) + 1);
      a.send(send);
    }
    for (int i = 0; i < k_burst; ++i) {
      auto e = expect_envelope(b);
      REQUIRE(e.sealed() == "burst " + std::to_string(i));
      REQUIRE(b.request(test_device::ack_frame(e)).has_acked());
    }
    for (int i = 0; i < k_burst; ++i) {
      auto reply = a.next();
      REQUIRE(reply.has_value());
      INFO("reply: " << reply->ShortDebugString());
      CHECK(reply->has_sent());
    }
  }
}

TEST_CASE(
    "an ack of no envelopes, of more than 256, or with a bad id is refused and deletes nothing",
    "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  REQUIRE(a.request(test_device::send_frame(bob, "keep me")).has_sent());

  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  const auto e = expect_envelope(b);
  expect_drained(b);
  wire::ClientFrame empty;
  empty.mutable_ack();
  CHECK(error_of(b.request(empty)) == wire::ERROR_INVALID_ARGUMENT);
  auto too_many = test_device::ack_frame(e);
  for (int i = 0; i < 256; ++i)
    *too_many.mutable_ack()->add_envelopes() = too_many.ack().envelopes(0);
  CHECK(error_of(b.request(too_many)) == wire::ERROR_INVALID_ARGUMENT);
  wire::Envelope short_id = e;
  short_id.set_envelope_id("short");
  CHECK(error_of(b.request(test_device::ack_frame({e, short_id}))) == wire::ERROR_INVALID_ARGUMENT);

  auto again = f.connect();
  REQUIRE(bob.login_on(again).has_authenticated());
  auto left = test_device::take_queue(again);
  REQUIRE(left.size() == 1);
  CHECK(left.front().sealed() == "keep me");
}

TEST_CASE("a restart between send and receive loses nothing", "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  {
    auto a = f.connect();
    REQUIRE(alice.login_on(a).has_authenticated());
    for (int i = 0; i < 20; ++i)
      REQUIRE(a.request(test_device::send_frame(bob, "kept " + std::to_string(i))).has_sent());
  }
  SECTION("a clean stop") { CHECK(f.havend.stop() == 0); }
  SECTION("a crash right after the acks") { f.havend.kill_now(); }
  f.havend.start();
  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  for (int i = 0; i < 20; ++i) CHECK(expect_envelope(b).sealed() == "kept " + std::to_string(i));
  expect_drained(b);
}

TEST_CASE("one mailbox cannot ack, fetch or read another's envelopes", "[relay]") {
  relay_fixture f;
  test_device alice, bob, mallory;
  f.start_with({&alice, &bob, &mallory});

  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  const auto id = random_string(16);
  REQUIRE(a.request(test_device::send_frame(bob, "for bob only", id)).has_sent());

  auto m = f.connect();
  REQUIRE(mallory.login_on(m).has_authenticated());
  expect_drained(m);  // nothing of bob's reaches mallory
  wire::Envelope bobs;
  bobs.set_seq(1);
  bobs.set_envelope_id(id);
  auto acked = m.request(test_device::ack_frame(bobs));
  REQUIRE(acked.has_acked());
  CHECK(acked.acked().not_found_size() == 1);  // mallory's seq 1 is no such envelope

  // Without bob's access key mallory can neither send to nor drain bob.
  test_device forged = test_device();
  forged.mailbox = bob.mailbox;
  CHECK(error_of(m.request(test_device::send_frame(forged, "spam"))) == wire::ERROR_ACCESS_DENIED);
  wire::ClientFrame fetch;
  fetch.mutable_fetch_prekeys()->set_mailbox_id(bob.mailbox);
  fetch.mutable_fetch_prekeys()->set_access_key(forged.access_key);
  CHECK(error_of(m.request(fetch)) == wire::ERROR_ACCESS_DENIED);
  // An unknown mailbox looks the same as a wrong key.
  forged.mailbox = random_string(16);
  CHECK(error_of(m.request(test_device::send_frame(forged, "x"))) == wire::ERROR_ACCESS_DENIED);

  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  auto e = expect_envelope(b);
  CHECK(e.envelope_id() == id);
  CHECK(e.sealed() == "for bob only");
  expect_drained(b);
}

TEST_CASE("prekeys: signatures checked, one-time keys handed out once, then last resort",
          "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});

  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  const auto signed_key = [&](std::uint32_t id, wire::PrekeyKind kind) {
    wire::SignedPrekey k;
    k.set_id(id);
    k.set_public_key(random_string(32));
    k.set_signature(sig_string(bob.identity.sign(crypto::bytes_of(crypto::prekey_message(
        static_cast<std::uint8_t>(kind), id, crypto::bytes_of(k.public_key()))))));
    return k;
  };
  wire::ClientFrame upload;
  *upload.mutable_upload_prekeys()->mutable_signed_prekey() = signed_key(1, wire::PREKEY_KIND_SIGNED);
  *upload.mutable_upload_prekeys()->mutable_last_resort() =
      signed_key(2, wire::PREKEY_KIND_LAST_RESORT);
  for (std::uint32_t i = 10; i < 13; ++i) {
    auto* k = upload.mutable_upload_prekeys()->add_one_time();
    k->set_id(i);
    k->set_public_key(random_string(32));
  }
  auto up = b.request(upload);
  REQUIRE(up.has_prekeys_uploaded());
  CHECK(up.prekeys_uploaded().one_time_stored() == 3);

  wire::ClientFrame bad;
  *bad.mutable_upload_prekeys()->mutable_signed_prekey() = signed_key(3, wire::PREKEY_KIND_SIGNED);
  bad.mutable_upload_prekeys()->mutable_signed_prekey()->set_id(4);  // signature no longer fits
  CHECK(error_of(b.request(bad)) == wire::ERROR_BAD_SIGNATURE);

  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  wire::ClientFrame fetch;
  fetch.mutable_fetch_prekeys()->set_mailbox_id(bob.mailbox);
  fetch.mutable_fetch_prekeys()->set_access_key(bob.access_key);
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto reply = a.request(fetch);
    REQUIRE(reply.has_prekey_bundle());
    const auto& bundle = reply.prekey_bundle();
    CHECK(bundle.identity().signing_key() == key_string(bob.identity.public_key()));
    REQUIRE(bundle.devices_size() == 1);
    const auto& dev = bundle.devices(0);
    CHECK(dev.signed_prekey().id() == 1);
    if (i < 3) {
      REQUIRE(dev.has_one_time());
      CHECK(seen.insert(dev.one_time().id()).second);
    } else {
      CHECK_FALSE(dev.has_one_time());
      CHECK(dev.last_resort().id() == 2);
    }
  }
}

TEST_CASE("bad frames get a clear error or close, and others are still served", "[relay]") {
  relay_fixture f({"--max-frame-bytes", "4096"});
  const auto invite = f.havend.invite();
  f.start();
  test_device d;
  f.enroll(d, invite);
  auto bystander = f.connect();
  REQUIRE(d.login_on(bystander).has_authenticated());
  expect_drained(bystander);

  SECTION("malformed protobuf: an error, and the connection stays usable") {
    auto c = f.connect();
    c.send_bytes(std::string("\xff\xff\xff\xff garbage", 13));
    auto reply = c.next();
    REQUIRE(reply.has_value());
    CHECK(reply->request_id() == 0);
    CHECK(error_of(*reply) == wire::ERROR_MALFORMED_FRAME);
    CHECK(error_of(c.request(test_device::ping_frame())) == wire::ERROR_NOT_AUTHENTICATED);
  }
  SECTION("invalid UTF-8 in a string field: malformed, and nothing in havend's log") {
    auto c = f.connect();
    wire::ClientFrame frame;
    frame.set_request_id(5);
    frame.mutable_register_()->set_invite_token(std::string("\xc3\x28", 2));
    c.send_bytes(frame.SerializePartialAsString());
    auto reply = c.next();
    REQUIRE(reply.has_value());
    CHECK(error_of(*reply) == wire::ERROR_MALFORMED_FRAME);
    CHECK(f.havend.log().find("libprotobuf") == std::string::npos);
  }
  SECTION("repeated malformed frames close the connection") {
    auto c = f.connect();
    for (int i = 0; i < 3; ++i) c.send_bytes("\x0a\xff");
    CHECK(c.closed_by_server());
  }
  SECTION("an unknown request type") {
    auto c = f.connect();
    // field 99, varint: a body from a future protocol version
    wire::ClientFrame frame;
    frame.set_request_id(7);
    std::string bytes = frame.SerializeAsString() + std::string("\x98\x06\x01", 3);
    c.send_bytes(bytes);
    auto reply = c.next();
    REQUIRE(reply.has_value());
    CHECK(reply->request_id() == 7);
    CHECK(error_of(*reply) == wire::ERROR_UNKNOWN_REQUEST);
  }
  SECTION("a request id of zero") {
    auto c = f.connect();
    auto frame = test_device::ping_frame();
    c.send(frame);
    CHECK(error_of(*c.next()) == wire::ERROR_INVALID_ARGUMENT);
  }
  SECTION("a text frame: an error, then close 1003") {
    auto c = f.connect();
    c.send_bytes("hello", true);
    auto reply = c.next();
    REQUIRE(reply.has_value());
    CHECK(error_of(*reply) == wire::ERROR_MALFORMED_FRAME);
    CHECK(c.closed_by_server());
    CHECK(c.close_reason().code == websocket::close_code::unknown_data);
  }
  SECTION("an oversized frame: close 1009") {
    auto c = f.connect();
    c.send_bytes(std::string(8192, 'x'));
    CHECK(c.closed_by_server());
    CHECK(c.close_reason().code == websocket::close_code::too_big);
  }
  SECTION("a silent connection is closed after the log-in timeout") {
    relay_fixture quick({"--config", (f.dir.path() / "quick.toml").string()});
    std::ofstream(f.dir.path() / "quick.toml") << "[limits]\nhandshake_timeout_seconds = 1\n";
    quick.start();
    auto c = quick.connect();
    CHECK(c.closed_by_server(5s));
    CHECK(c.close_reason().code == websocket::close_code::policy_error);
  }
  CHECK(bystander.request(test_device::ping_frame()).has_pong());
}

TEST_CASE("a second log-in of the same device replaces the first connection", "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  auto old_conn = f.connect();
  REQUIRE(bob.login_on(old_conn).has_authenticated());
  expect_drained(old_conn);
  auto new_conn = f.connect();
  REQUIRE(bob.login_on(new_conn).has_authenticated());
  expect_drained(new_conn);
  CHECK(old_conn.closed_by_server());

  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  REQUIRE(a.request(test_device::send_frame(bob, "to the new one")).has_sent());
  CHECK(expect_envelope(new_conn).sealed() == "to the new one");
}

TEST_CASE("havend answers /healthz over plain HTTP on the relay port", "[relay]") {
  relay_fixture f;
  f.start();
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect({net::ip::make_address("127.0.0.1"), f.havend.port()});
  beast::http::request<beast::http::empty_body> req(beast::http::verb::get, "/healthz", 11);
  req.set(beast::http::field::host, "127.0.0.1");
  beast::http::write(stream, req);
  beast::flat_buffer buffer;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(stream, buffer, res);
  CHECK(res.result() == beast::http::status::ok);
  CHECK(res.body() == "ok\n");
  CHECK(res[beast::http::field::cache_control] == "no-store");
}

TEST_CASE("SIGTERM stops havend cleanly and the log holds no ids or content", "[relay]") {
  relay_fixture f;
  test_device alice, bob;
  f.start_with({&alice, &bob});
  const std::string marker = "MARKER-" + std::to_string(std::random_device{}());
  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  REQUIRE(a.request(test_device::send_frame(bob, marker)).has_sent());
  // The client keeps reading while havend drains, as a real one would.
  int exit_code = -1;
  std::thread stopper([&] { exit_code = f.havend.stop(); });
  CHECK(a.closed_by_server());
  stopper.join();
  CHECK(exit_code == 0);
  CHECK(a.close_reason().code == websocket::close_code::going_away);

  const auto log = f.havend.log();
  CHECK(log.find("stopped cleanly") != std::string::npos);
  CHECK(log.find("did not finish") == std::string::npos);  // drained, not cut off
  CHECK(log.find(marker) == std::string::npos);
  CHECK(log.find("127.0.0.1") == std::string::npos);
  for (const auto& mailbox : {alice.mailbox, bob.mailbox}) {
    std::string hex;
    for (unsigned char ch : mailbox) hex += "0123456789abcdef"[ch >> 4], hex += "0123456789abcdef"[ch & 15];
    CHECK(log.find(hex) == std::string::npos);
  }
}

TEST_CASE("havend --help explains every flag and bad flags exit non-zero", "[relay]") {
  auto help = run_command({havend_process::binary(), "--help"});
  CHECK(help.exit_code == 0);
  for (const auto* flag : {"--config", "--listen", "--port", "--data-dir", "--max-frame-bytes",
                           "--outbound-buffer-bytes", "--log-addresses", "admin"})
    CHECK(help.out.find(flag) != std::string::npos);
  CHECK(run_command({havend_process::binary(), "--no-such-flag"}).exit_code != 0);
  temp_dir dir;
  std::ofstream(dir.path() / "bad.toml") << "[limits]\nmax_frame_bytes = \"big\"\n";
  CHECK(run_command({havend_process::binary(), "--config", (dir.path() / "bad.toml").string()})
            .exit_code != 0);
}

TEST_CASE("the example config in deploy/ is valid and flags override it", "[relay]") {
  temp_dir dir;
  const std::string example = std::string(HAVEN_SOURCE_DIR) + "/deploy/havend.toml";
  havend_process havend(dir.path() / "data", std::vector<std::string>{"--config", example});
  // The file says port 8080; the fixture's --port 0 comes first, so the file
  // must not override a flag given before it either.
  CHECK(havend.start() != 8080);
  CHECK(havend.stop() == 0);
}

TEST_CASE("a config with a bad number stops havend with the key named", "[relay]") {
  temp_dir dir;
  for (const auto* line : {"[server]\nport = nan", "[limits]\nmax_frame_bytes = 2000.5",
                           "[limits]\nsends_per_mailbox = { per_second = nan, burst = 10 }",
                           "[store]\nenvelope_ttl_days = inf"}) {
    INFO(line);
    std::ofstream(dir.path() / "bad.toml") << line << "\n";
    const auto r = run_command({havend_process::binary(), "--config", (dir.path() / "bad.toml").string(),
                                "--data-dir", (dir.path() / "data").string()},
                               dir.path() / "bad.log");
    CHECK(r.exit_code != 0);
    CHECK(read_text(dir.path() / "bad.log").find("bad.toml") != std::string::npos);
  }
}

TEST_CASE("a roaming vault: stored by its owner, opened before log-in, destroyed after wrong tries",
          "[relay][vault]") {
  temp_dir config_dir;
  std::ofstream(config_dir.path() / "vault.toml") << "[limits]\nvault_max_failures = 3\n";
  relay_fixture f({"--config", (config_dir.path() / "vault.toml").string()});
  test_device survivor, other;
  f.start_with({&survivor, &other});
  const auto vault_id = random_string(16);
  const auto k_auth = random_string(32);
  const auto verifier = crypto::hash256(crypto::bytes_of(k_auth));
  const auto store_frame = [&](const std::string& sealed) {
    wire::ClientFrame f2;
    auto* v = f2.mutable_vault_store();
    v->set_vault_id(vault_id);
    v->set_header("salt-and-limits");
    v->set_auth_verifier(std::string(reinterpret_cast<const char*>(verifier.data()), 32));
    v->set_sealed(sealed);
    return f2;
  };
  {
    auto anon = f.connect();
    CHECK(error_of(anon.request(store_frame("x"))) == wire::ERROR_NOT_AUTHENTICATED);
    auto c = f.connect();
    REQUIRE(survivor.login_on(c).has_authenticated());
    REQUIRE(c.request(store_frame("the sealed vault")).has_vault_stored());
    auto o = f.connect();
    REQUIRE(other.login_on(o).has_authenticated());
    CHECK(error_of(o.request(store_frame("hijack"))) == wire::ERROR_ACCESS_DENIED);
  }
  const auto open_frame = [&](const std::string& key) {
    wire::ClientFrame f2;
    f2.mutable_vault_open()->set_vault_id(vault_id);
    f2.mutable_vault_open()->set_auth_key(key);
    return f2;
  };
  {
    // A library computer: nothing local. Header, open, then log in on the
    // same connection with the device key from the vault.
    auto c = f.connect();
    wire::ClientFrame header;
    header.mutable_vault_header()->set_vault_id(vault_id);
    auto h = c.request(header);
    REQUIRE(h.has_vault_header());
    CHECK(h.vault_header().header() == "salt-and-limits");
    CHECK(h.vault_header().tries_left() == 3);
    auto wrong = c.request(open_frame(random_string(32)));
    CHECK(error_of(wrong) == wire::ERROR_AUTH_FAILED);
    CHECK(wrong.error().message().find("2 tries left") != std::string::npos);
    auto opened = c.request(open_frame(k_auth));
    REQUIRE(opened.has_vault_opened());
    CHECK(opened.vault_opened().sealed() == "the sealed vault");
    CHECK(survivor.login_on(c).has_authenticated());
  }
  {
    auto c = f.connect();
    CHECK(error_of(c.request(open_frame(random_string(32)))) == wire::ERROR_AUTH_FAILED);
    CHECK(error_of(c.request(open_frame(random_string(32)))) == wire::ERROR_AUTH_FAILED);
    auto last = c.request(open_frame(random_string(32)));
    CHECK(error_of(last) == wire::ERROR_NOT_FOUND);
    CHECK(last.error().message().find("destroyed") != std::string::npos);
    // Gone for good, even with the right passphrase.
    CHECK(error_of(c.request(open_frame(k_auth))) == wire::ERROR_NOT_FOUND);
  }
}

TEST_CASE("a group message reaches every member once, live or later, and only members send",
          "[relay][group]") {
  relay_fixture f;
  std::vector<std::string> invites;
  for (int i = 0; i < 4; ++i) invites.push_back(f.havend.invite());
  f.start();
  test_device alice, bob, carol, mallory;
  f.enroll(alice, invites[0]);
  f.enroll(bob, invites[1]);
  f.enroll(carol, invites[2]);
  f.enroll(mallory, invites[3]);
  const auto group = random_string(16);

  auto a = f.connect();
  REQUIRE(alice.login_on(a).has_authenticated());
  expect_drained(a);
  auto created = a.request(test_device::create_group_frame(group));
  REQUIRE(created.has_group());
  CHECK(created.group().members() == 1);
  CHECK(error_of(a.request(test_device::create_group_frame(group))) ==
        wire::ERROR_INVALID_ARGUMENT);

  // Nobody is added without their access key.
  test_device wrong_key;  // a fresh, wrong access key
  wrong_key.mailbox = bob.mailbox;
  CHECK(error_of(a.request(test_device::add_members_frame(group, {&wrong_key}))) ==
        wire::ERROR_ACCESS_DENIED);
  auto added = a.request(test_device::add_members_frame(group, {&bob, &carol}));
  REQUIRE(added.has_group());
  CHECK(added.group().members() == 3);

  // A stranger can neither send to the group nor change it.
  {
    auto m = f.connect();
    REQUIRE(mallory.login_on(m).has_authenticated());
    expect_drained(m);
    CHECK(error_of(m.request(test_device::group_send_frame(group, "spam"))) ==
          wire::ERROR_ACCESS_DENIED);
    CHECK(error_of(m.request(test_device::add_members_frame(group, {&mallory}))) ==
          wire::ERROR_ACCESS_DENIED);
    CHECK(error_of(m.request(test_device::group_send_frame(random_string(16), "x"))) ==
          wire::ERROR_ACCESS_DENIED);
    CHECK(error_of(m.request(test_device::group_send_frame("short", "x"))) ==
          wire::ERROR_INVALID_ARGUMENT);
  }

  // Bob is online and gets it pushed; carol is offline and gets it at log-in.
  auto b = f.connect();
  REQUIRE(bob.login_on(b).has_authenticated());
  expect_drained(b);
  const auto id = random_string(16);
  REQUIRE(a.request(test_device::group_send_frame(group, "to all", id)).has_sent());
  auto live = expect_envelope(b);
  CHECK(live.envelope_id() == id);
  CHECK(live.sealed() == "to all");
  CHECK(live.seq() == 1);
  REQUIRE(b.request(test_device::ack_frame(live)).has_acked());
  {
    auto c = f.connect();
    REQUIRE(carol.login_on(c).has_authenticated());
    auto later = test_device::take_queue(c);
    REQUIRE(later.size() == 1);
    CHECK(later.front().envelope_id() == id);
    CHECK(later.front().sealed() == "to all");
  }
  // Bob leaves; later messages reach carol only, and bob cannot send.
  REQUIRE(b.request(test_device::remove_member_frame(group, bob)).group().members() == 2);
  CHECK(error_of(b.request(test_device::group_send_frame(group, "still here?"))) ==
        wire::ERROR_ACCESS_DENIED);
  REQUIRE(a.request(test_device::group_send_frame(group, "after bob left")).has_sent());
  {
    auto c = f.connect();
    REQUIRE(carol.login_on(c).has_authenticated());
    auto later = test_device::take_queue(c);
    REQUIRE(later.size() == 1);
    CHECK(later.front().sealed() == "after bob left");
  }
  // Neither the sender's own device nor bob after leaving holds a copy:
  // a fresh log-in finds their queues empty.
  for (const auto* member : {&alice, &bob}) {
    auto c = f.connect();
    REQUIRE(member->login_on(c).has_authenticated());
    CHECK(test_device::take_queue(c).empty());
  }
}
