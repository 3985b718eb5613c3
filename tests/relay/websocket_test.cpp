// havend's WebSocket layer (server/src/websocket_frame.hpp) byte by byte:
// a raw TCP client against a real havend, so frames a WebSocket library
// would never send can be sent.

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;
namespace net = boost::asio;

namespace {

// RFC 6455 section 1.3's example key and the answer it must get.
constexpr const char* k_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* k_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct server_frame {
  std::uint8_t first = 0;  // FIN, RSV and opcode
  std::string payload;

  [[nodiscard]] int opcode() const { return first & 0x0F; }
  [[nodiscard]] int close_code() const {
    REQUIRE(payload.size() >= 2);
    return (static_cast<std::uint8_t>(payload[0]) << 8) | static_cast<std::uint8_t>(payload[1]);
  }
};

// A client frame as it goes on the wire: masked with a fixed key unless
// `masked` is false; the length in 16 or 64 bits when `length_bytes` says.
std::string client_frame(std::uint8_t first, const std::string& payload, bool masked = true,
                         int length_bytes = 0) {
  std::string out(1, static_cast<char>(first));
  const std::uint8_t mask_bit = masked ? 0x80 : 0;
  const auto n = payload.size();
  if (length_bytes == 0 && n >= 126) length_bytes = n <= 0xFFFF ? 2 : 8;
  if (length_bytes == 0) {
    out += static_cast<char>(mask_bit | n);
  } else {
    out += static_cast<char>(mask_bit | (length_bytes == 2 ? 126 : 127));
    for (int i = length_bytes - 1; i >= 0; --i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  }
  const std::string key = "\x37\xfa\x21\x3d";
  if (masked) out += key;
  for (std::size_t i = 0; i < n; ++i)
    out += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return out;
}

std::string close_payload(int code, const std::string& reason = "") {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)} + reason;
}

// One TCP connection with blocking reads bounded by a receive timeout.
class raw_client {
 public:
  explicit raw_client(unsigned short port) : socket_(ioc_) {
    socket_.connect({net::ip::make_address("127.0.0.1"), port});
    const timeval five_seconds{5, 0};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &five_seconds,
               sizeof five_seconds);
  }

  // Sends an upgrade request, and `then` in the same write; returns the
  // response's head.
  std::string upgrade(const std::string& key = k_key, const std::string& version = "13",
                      const std::string& then = "") {
    std::string request =
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate\r\n";
    if (!key.empty()) request += "Sec-WebSocket-Key: " + key + "\r\n";
    request += "Sec-WebSocket-Version: " + version + "\r\n\r\n";
    write(request + then);
    beast::error_code ec;
    const auto size = net::read_until(socket_, net::dynamic_buffer(in_), "\r\n\r\n", ec);
    REQUIRE_FALSE(ec);
    auto head = in_.substr(0, size);
    in_.erase(0, size);
    return head;
  }

  // Upgrades and returns the log-in challenge, which havend sends first.
  wire::AuthChallenge open() {
    REQUIRE(upgrade().starts_with("HTTP/1.1 101 "));
    return next_message().challenge();
  }

  void write(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }
  void send(const wire::ClientFrame& frame) {
    write(client_frame(0x82, frame.SerializeAsString()));
  }

  wire::ServerFrame next_message() {
    auto f = read_frame();
    REQUIRE(f);
    REQUIRE(f->opcode() == 2);
    wire::ServerFrame frame;
    REQUIRE(frame.ParseFromString(f->payload));
    return frame;
  }

  // The next frame from havend; nullopt once it closed the connection.
  std::optional<server_frame> read_frame() {
    std::string head;
    if (!read(2, head)) return std::nullopt;
    server_frame f{static_cast<std::uint8_t>(head[0]), {}};
    REQUIRE((head[1] & 0x80) == 0);  // a server never masks
    std::uint64_t length = head[1] & 0x7F;
    if (length >= 126) {
      std::string extended;
      REQUIRE(read(length == 126 ? 2 : 8, extended));
      length = 0;
      for (char c : extended) length = (length << 8) | static_cast<std::uint8_t>(c);
    }
    REQUIRE(read(length, f.payload));
    return f;
  }

  // True when havend ends the connection with a close frame of `code`,
  // after nothing but its replies to frames sent so far.
  bool closed_with(int code) {
    for (auto f = read_frame(); f; f = read_frame()) {
      if (f->opcode() != 8) continue;
      INFO("close frame: " << f->payload.substr(2));
      CHECK(f->close_code() == code);
      return f->close_code() == code && !read_frame() && ended();  // then the TCP close
    }
    return false;
  }

  // The connection ended (not a read that timed out).
  [[nodiscard]] bool ended() const {
    INFO("last read: " << error.message());
    return error == net::error::eof || error == net::error::connection_reset;
  }

  beast::error_code error;

 private:
  bool read(std::size_t n, std::string& out) {
    if (in_.size() - taken_ < n) {
      in_.erase(0, std::exchange(taken_, 0));  // once per read from the socket, not per frame
      net::read(socket_, net::dynamic_buffer(in_), net::transfer_at_least(n - in_.size()), error);
      if (in_.size() < n) return false;
    }
    out = in_.substr(taken_, n);
    taken_ += n;
    return true;
  }

  net::io_context ioc_;
  net::ip::tcp::socket socket_;
  std::string in_;  // read from the socket; the first taken_ bytes are used
  std::size_t taken_ = 0;
};

// The frames of one message from havend: a Batch's, or the message alone.
google::protobuf::RepeatedPtrField<wire::ServerFrame> frames_of(const wire::ServerFrame& message) {
  if (message.has_batch()) return message.batch().frames();
  google::protobuf::RepeatedPtrField<wire::ServerFrame> one;
  *one.Add() = message;
  return one;
}

// The request ids of the next message's replies, each the refusal of a
// request made before log-in.
std::vector<std::uint64_t> reply_ids(raw_client& c) {
  std::vector<std::uint64_t> ids;
  for (const auto& reply : frames_of(c.next_message())) {
    CHECK(reply.error().code() == wire::ERROR_NOT_AUTHENTICATED);
    ids.push_back(reply.request_id());
  }
  return ids;
}

struct websocket_fixture {
  temp_dir dir{"haven-websocket"};
  havend_process havend{dir.path() / "data"};
  websocket_fixture() { havend.start(); }
};

}  // namespace

TEST_CASE("the upgrade: the RFC's accept key and no extension, or a clear HTTP refusal",
          "[relay][websocket]") {
  websocket_fixture f;

  SECTION("a valid request is switched, without permessage-deflate though it was offered") {
    raw_client c(f.havend.port());
    const auto head = c.upgrade();
    INFO(head);
    CHECK(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    CHECK(head.find(std::string("Sec-WebSocket-Accept: ") + k_accept + "\r\n") != head.npos);
    CHECK(head.find("Sec-WebSocket-Extensions") == head.npos);
  }
  SECTION("another protocol version gets 426 and the version havend speaks") {
    raw_client c(f.havend.port());
    const auto head = c.upgrade(k_key, "8");
    INFO(head);
    CHECK(head.starts_with("HTTP/1.1 426 "));
    CHECK(head.find("Sec-WebSocket-Version: 13\r\n") != head.npos);
  }
  SECTION("a missing key, or one that is not 16 bytes in base64, gets 400") {
    for (const std::string key :
         {"", "c2hvcnQ=", "dGhlIHNhbXBsZSBub25jZQ=x", "dGhlIHNhbXBsZSBub25jZQ"}) {
      INFO("key: " << key);
      raw_client c(f.havend.port());
      CHECK(c.upgrade(key).starts_with("HTTP/1.1 400 "));
    }
  }
}

TEST_CASE("frames sent in the same write as the upgrade request are read after it",
          "[relay][websocket]") {
  websocket_fixture f;
  raw_client c(f.havend.port());
  auto ping = test_device::ping_frame();
  ping.set_request_id(5);
  REQUIRE(c.upgrade(k_key, "13",
                    client_frame(0x89, "early") + client_frame(0x82, ping.SerializeAsString()))
              .starts_with("HTTP/1.1 101 "));
  // The pong may come before or after the challenge and the reply.
  bool ponged = false, challenged = false, answered = false;
  while (!(ponged && challenged && answered)) {
    const auto frame = c.read_frame();
    REQUIRE(frame);
    if (frame->opcode() == 10) {
      CHECK(frame->payload == "early");
      ponged = true;
      continue;
    }
    REQUIRE(frame->opcode() == 2);
    wire::ServerFrame message;
    REQUIRE(message.ParseFromString(frame->payload));
    for (const auto& reply : frames_of(message)) {
      if (reply.has_challenge()) {
        challenged = true;
        continue;
      }
      CHECK(reply.request_id() == 5);
      CHECK(reply.error().code() == wire::ERROR_NOT_AUTHENTICATED);
      answered = true;
    }
  }
}

TEST_CASE("a ping is answered with its payload, also between the fragments of a request",
          "[relay][websocket]") {
  websocket_fixture f;
  raw_client c(f.havend.port());
  c.open();

  c.write(client_frame(0x89, "are you there?"));
  auto pong = c.read_frame();
  REQUIRE(pong);
  CHECK(pong->opcode() == 10);
  CHECK(pong->payload == "are you there?");

  // A Ping request in two fragments of a binary message, a ping between.
  auto ping = test_device::ping_frame();
  ping.set_request_id(7);
  const auto request = ping.SerializeAsString();
  c.write(client_frame(0x02, request.substr(0, 1)) + client_frame(0x89, "between") +
          client_frame(0x80, request.substr(1)));
  pong = c.read_frame();
  REQUIRE(pong);
  CHECK(pong->opcode() == 10);
  CHECK(pong->payload == "between");
  // The request was read whole: its id comes back, with the answer to a
  // Ping before log-in.
  const auto frame = c.next_message();
  CHECK(frame.request_id() == 7);
  CHECK(frame.error().code() == wire::ERROR_NOT_AUTHENTICATED);
}

TEST_CASE("pings sent faster than the pongs can go out are answered in order, the last one "
          "always", "[relay][websocket]") {
  websocket_fixture f;
  raw_client c(f.havend.port());
  c.open();
  // The client does not read until all are sent, so the pongs back up
  // behind a full socket while havend reads on: a pong waits while another
  // is being written, and a newer ping replaces the waiting one.
  constexpr int k_pings = 100'000;
  const auto payload = [](int i) {
    auto p = std::to_string(i);
    return p + std::string(100 - p.size(), '.');
  };
  std::string pings;
  for (int i = 0; i < k_pings; ++i) pings += client_frame(0x89, payload(i));
  c.write(pings);
  int last = -1;
  int pongs = 0;
  while (last < k_pings - 1) {
    const auto pong = c.read_frame();
    REQUIRE(pong);
    REQUIRE(pong->opcode() == 10);
    REQUIRE(pong->payload.size() == 100);
    const int index = std::stoi(pong->payload);
    REQUIRE(pong->payload == payload(index));  // a payload sent, unchanged
    REQUIRE(index > last);
    last = index;
    ++pongs;
  }
  INFO(pongs << " pongs for " << k_pings << " pings");
  CHECK(pongs < k_pings);  // the backlog was real and was never queued up
}

TEST_CASE("requests are read whole however their bytes come: one at a time, larger than a "
          "read, many to a read", "[relay][websocket]") {
  websocket_fixture f;
  raw_client c(f.havend.port());
  c.open();
  // Pings before log-in: each is answered at once, with its request id.
  const auto request = [](std::uint64_t id, std::size_t padding = 0) {
    auto ping = test_device::ping_frame();
    ping.set_request_id(id);
    auto bytes = ping.SerializeAsString();
    if (padding == 0) return bytes;
    // An unknown field (number 1000, bytes), which parsing keeps aside.
    bytes += "\xC2\x3E";
    auto n = padding;
    for (; n >= 0x80; n >>= 7) bytes += static_cast<char>((n & 0x7F) | 0x80);
    bytes += static_cast<char>(n);
    return bytes + std::string(padding, 'x');
  };
  const auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); };

  SECTION("a byte at a time") {
    const auto frame = client_frame(0x82, request(11));
    for (char byte : frame) {
      c.write(std::string(1, byte));
      pause();
    }
    CHECK(reply_ids(c) == std::vector<std::uint64_t>{11});
  }
  SECTION("a 100 KiB request in three pieces, and the next one behind it") {
    const auto frame = client_frame(0x82, request(12, 100 * 1024));
    c.write(frame.substr(0, 100));
    pause();
    c.write(frame.substr(100, 50'000));
    pause();
    c.write(frame.substr(50'100) + client_frame(0x82, request(13)));
    std::vector<std::uint64_t> ids;
    while (ids.size() < 2) std::ranges::copy(reply_ids(c), std::back_inserter(ids));
    CHECK(ids == std::vector<std::uint64_t>{12, 13});
  }
  SECTION("a request behind 30 KiB of frames that get no answer, in one write") {
    // Unsolicited pongs, which havend takes and answers with nothing.
    std::string frames;
    for (int i = 0; i < 300; ++i) frames += client_frame(0x8A, std::string(100, 'p'));
    REQUIRE(frames.size() > 16 * 1024);
    c.write(frames + client_frame(0x82, request(14)));
    CHECK(reply_ids(c) == std::vector<std::uint64_t>{14});
  }
  SECTION("10,000 requests in one write, many times a read's 16 KiB") {
    std::string frames;
    for (std::uint64_t id = 1; id <= 10'000; ++id) frames += client_frame(0x82, request(id));
    REQUIRE(frames.size() > 4 * 16 * 1024);
    c.write(frames);
    std::vector<std::uint64_t> ids;
    while (ids.size() < 10'000) std::ranges::copy(reply_ids(c), std::back_inserter(ids));
    std::vector<std::uint64_t> expected(10'000);
    std::iota(expected.begin(), expected.end(), 1);
    CHECK(ids == expected);
  }
}

TEST_CASE("a client's close is answered with its code, and havend ends the connection",
          "[relay][websocket]") {
  websocket_fixture f;
  SECTION("with a code and a reason") {
    raw_client c(f.havend.port());
    c.open();
    c.write(client_frame(0x88, close_payload(4000, "bye")));
    CHECK(c.closed_with(4000));
  }
  SECTION("with no code: a normal close") {
    raw_client c(f.havend.port());
    c.open();
    c.write(client_frame(0x88, ""));
    CHECK(c.closed_with(1000));
  }
}

// After the client's close frame havend still writes its own and then waits
// for the client's FIN, up to the handshake timeout; a connection's read
// buffer (16 KiB once a client sends much) must not wait with it, or
// many clients leaving at once, or never finishing their close, hold one
// each. RSS says nothing under ASan or TSan (their allocators keep freed
// memory), so the bound is checked in release.
TEST_CASE("a connection that has read the client's close frame holds no read buffer while the "
          "close finishes",
          "[relay][websocket]") {
  temp_dir dir{"haven-websocket"};
  std::ofstream(dir.path() / "c.toml")
      << "[limits]\nconnections_per_address = { per_second = 10000, burst = 10000 }\n"
         "handshake_timeout_seconds = 120\n";
  havend_process havend(dir.path() / "data", {"--config", (dir.path() / "c.toml").string()});
  havend.start();
  constexpr int k_clients = 300;
  std::vector<std::unique_ptr<raw_client>> clients;
  for (int i = 0; i < k_clients; ++i) {
    clients.push_back(std::make_unique<raw_client>(havend.port()));
    clients.back()->open();
  }
  const long rss_before = havend.rss_kib();
  // A 12 KiB request (refused: not logged in) and the close, in one write,
  // so that the read which takes the close has filled most of its buffer.
  test_device nobody;
  auto request = test_device::send_frame(nobody, std::string(12 * 1024, 'x'));
  request.set_request_id(7);
  const auto last_words =
      client_frame(0x82, request.SerializeAsString()) + client_frame(0x88, close_payload(1000));
  for (auto& c : clients) {
    c->write(last_words);
    CHECK(c->next_message().request_id() == 7);
    const auto closing = c->read_frame();
    REQUIRE(closing);
    REQUIRE(closing->opcode() == 8);
    CHECK(closing->close_code() == 1000);
  }
  const long grown = havend.rss_kib() - rss_before;
  WARN("havend RSS grew " << grown << " KiB while " << k_clients << " connections closed");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(grown < k_clients * 8);  // a buffer kept per connection is 16 KiB
#endif
  clients.clear();
  raw_client after(havend.port());
  CHECK(after.open().nonce().size() > 0);
}

TEST_CASE("frames RFC 6455 forbids close the connection with 1002, and others are served",
          "[relay][websocket]") {
  websocket_fixture f;
  const auto ping_request = test_device::ping_frame().SerializeAsString();
  const std::vector<std::pair<std::string, std::string>> forbidden{
      {"an unmasked frame", client_frame(0x82, ping_request, false)},
      {"a reserved bit set (compression never agreed)", client_frame(0xC2, ping_request)},
      {"an unknown data opcode", client_frame(0x83, ping_request)},
      {"an unknown control opcode", client_frame(0x8B, "")},
      {"a fragmented ping", client_frame(0x09, "x")},
      {"a ping of 126 bytes", client_frame(0x89, std::string(126, 'x'))},
      {"a length not in its shortest form", client_frame(0x82, ping_request, true, 2)},
      {"a continuation with no message begun", client_frame(0x80, ping_request)},
      {"a new message inside a fragmented one",
       client_frame(0x02, ping_request.substr(0, 1)) + client_frame(0x82, ping_request)},
      {"a close frame of 1 byte", client_frame(0x88, "x")},
      {"a close code no one may send (1005)", client_frame(0x88, close_payload(1005))},
      {"a close reason that is not UTF-8", client_frame(0x88, close_payload(1000, "\xC0\xAF"))},
  };
  for (const auto& [what, bytes] : forbidden) {
    INFO(what);
    raw_client c(f.havend.port());
    c.open();
    c.write(bytes);
    CHECK(c.closed_with(1002));
  }
  ws_client bystander(f.havend.port());
  CHECK(bystander.request(test_device::ping_frame()).error().code() ==
        wire::ERROR_NOT_AUTHENTICATED);
}

TEST_CASE("a frame announcing more than the cap is refused with 1009 before its payload comes",
          "[relay][websocket]") {
  websocket_fixture f;
  raw_client c(f.havend.port());
  c.open();
  // A 64-bit length of 1 GiB and a mask key; not one byte of payload.
  std::string head{'\x82', '\xFF', 0, 0, 0, 0, '\x40', 0, 0, 0};
  head += "\x37\xfa\x21\x3d";
  c.write(head);
  CHECK(c.closed_with(1009));
}

TEST_CASE("a logged-in client is pinged when silent: kept while it answers, closed if not",
          "[relay][websocket]") {
  temp_dir dir{"haven-websocket"};
  std::ofstream(dir.path() / "c.toml") << "[limits]\nidle_timeout_seconds = 2\n";
  havend_process havend(dir.path() / "data", {"--config", (dir.path() / "c.toml").string()});
  test_device alice;
  start_with_accounts(havend, {&alice});

  raw_client c(havend.port());
  auto auth = alice.auth_frame(c.open());
  auth.set_request_id(1);
  c.send(auth);
  REQUIRE(c.next_message().has_authenticated());
  REQUIRE(c.next_message().has_queue_drained());

  // A ping comes a second (half the idle timeout) after the last byte heard.
  SECTION("a client that answers the pings stays") {
    for (int pings = 0; pings < 2;) {
      auto f = c.read_frame();
      REQUIRE(f);
      REQUIRE(f->opcode() == 9);
      ++pings;
      c.write(client_frame(0x8A, f->payload));
    }
    auto ping = test_device::ping_frame();
    ping.set_request_id(2);
    c.send(ping);
    const auto reply = c.next_message();
    CHECK(reply.request_id() == 2);
    CHECK(reply.has_pong());
  }
  SECTION("a client that does not is closed") {
    auto f = c.read_frame();
    REQUIRE(f);
    CHECK(f->opcode() == 9);
    CHECK_FALSE(c.read_frame());
    CHECK(c.ended());
  }
}
