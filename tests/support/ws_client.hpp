#pragma once
// A plain synchronous WebSocket client for tests: real TCP to a real
// havend on loopback, every read bounded by a timeout.

#include <netinet/in.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <deque>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "wire.pb.h"

namespace haven::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using namespace std::chrono_literals;

class ws_client {
 public:
  // `source` picks the loopback address we connect from (127.0.0.2 is
  // another client address as far as per-address limits go).
  explicit ws_client(unsigned short port, bool read_challenge = true,
                     const char* source = "127.0.0.1")
      : ws_(ioc_) {
    net::ip::tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(net::ip::tcp::v4());
    // The port is left to connect(): bind() alone takes one from the pool
    // listening sockets use, and could take a restarting havend's port.
    const int on = 1;
    setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    socket.bind({net::ip::make_address(source), 0});
    beast::get_lowest_layer(ws_).connect(endpoint);
    // Without it a request's last partial segment waits for the delayed ACK
    // of the one before: 40 ms per request of a few KiB.
    socket.set_option(net::ip::tcp::no_delay(true));
    ws_.read_message_max(64 << 20);
    ws_.handshake("127.0.0.1", "/v1/ws");
    ws_.binary(true);
    if (read_challenge) {
      auto first = next();
      if (!first || !first->has_challenge()) throw std::runtime_error("no auth challenge");
      challenge = first->challenge();
    }
  }

  wire::AuthChallenge challenge;

  void send(const wire::ClientFrame& frame) { send_bytes(frame.SerializeAsString()); }

  // Sends every later message in fragments of `bytes`.
  void fragment(std::size_t bytes) {
    ws_.auto_fragment(true);
    ws_.write_buffer_bytes(bytes);
  }

  void send_bytes(const std::string& bytes, bool text = false) {
    ws_.text(text);
    ws_.write(net::buffer(bytes));
    ws_.binary(true);
  }

  // The next frame, or nullopt when the connection closed or nothing came
  // within `timeout` (the connection is unusable after a timeout).
  std::optional<wire::ServerFrame> next(std::chrono::milliseconds timeout = 5s) {
    if (!pushed_.empty()) {
      auto f = std::move(pushed_.front());
      pushed_.pop_front();
      return f;
    }
    return read_one(timeout);
  }

  // Sends a request with a fresh id and returns its reply; frames that
  // arrive meanwhile (pushes) are kept for next().
  wire::ServerFrame request(wire::ClientFrame frame, std::chrono::milliseconds timeout = 10s) {
    frame.set_request_id(++last_id_);
    send(frame);
    for (;;) {
      auto f = read_one(timeout);
      if (!f) throw std::runtime_error("no reply: " + error.message());
      if (f->request_id() == last_id_) return *f;
      pushed_.push_back(std::move(*f));
    }
  }

  // Waits until the server closes; true if it did within the timeout.
  bool closed_by_server(std::chrono::milliseconds timeout = 5s) {
    while (read_one(timeout)) {
    }
    UNSCOPED_INFO("connection ended with: " << error.message());
    // After the server's close frame our reply may meet a socket it has
    // already shut (broken pipe, not connected): still closed by the server.
    return error == websocket::error::closed || error == net::error::eof ||
           error == net::error::connection_reset || error == net::error::broken_pipe ||
           error == net::error::not_connected;
  }

  [[nodiscard]] websocket::close_reason close_reason() const { return ws_.reason(); }

  beast::error_code error;
  // Frames of pushed envelopes as they came off the wire: how many, the
  // most envelopes in one, and the largest in bytes.
  std::size_t envelope_frames = 0;
  int most_envelopes_per_frame = 0;
  std::size_t largest_envelope_frame = 0;
  // Batches of other frames, likewise.
  std::size_t batches = 0;
  int most_frames_per_batch = 0;
  std::size_t largest_batch = 0;

 private:
  // Tests read one frame at a time: a message of several (Envelopes, one
  // envelope each; Batch) is split here, in order, and the rest are kept
  // for the next reads.
  std::optional<wire::ServerFrame> read_one(std::chrono::milliseconds timeout) {
    if (!split_.empty()) {
      auto f = std::move(split_.front());
      split_.pop_front();
      return f;
    }
    auto f = read_frame(timeout);
    if (f && f->has_batch()) {
      if (f->batch().frames_size() < 2) {  // a lone frame comes bare, says the protocol
        error = net::error::invalid_argument;
        return std::nullopt;
      }
      ++batches;
      most_frames_per_batch = std::max(most_frames_per_batch, f->batch().frames_size());
      largest_batch = std::max(largest_batch, buffer_.size());
      for (auto& inner : *f->mutable_batch()->mutable_frames()) {
        if (inner.has_batch() || inner.has_envelopes()) {  // never, says the protocol
          error = net::error::invalid_argument;
          return std::nullopt;
        }
        split_.push_back(std::move(inner));
      }
      return read_one(timeout);
    }
    if (!f || !f->has_envelopes()) return f;
    ++envelope_frames;
    most_envelopes_per_frame = std::max(most_envelopes_per_frame, f->envelopes().envelopes_size());
    largest_envelope_frame = std::max(largest_envelope_frame, buffer_.size());
    for (auto& e : *f->mutable_envelopes()->mutable_envelopes()) {
      wire::ServerFrame one;
      *one.mutable_envelopes()->add_envelopes() = std::move(e);
      split_.push_back(std::move(one));
    }
    return read_one(timeout);
  }

  std::optional<wire::ServerFrame> read_frame(std::chrono::milliseconds timeout) {
    buffer_.consume(buffer_.size());
    bool done = false;
    error = {};
    ws_.async_read(buffer_, [&](beast::error_code ec, std::size_t) {
      done = true;
      error = ec;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run();
      error = net::error::timed_out;
      return std::nullopt;
    }
    if (error) return std::nullopt;
    wire::ServerFrame frame;
    if (!frame.ParseFromString(beast::buffers_to_string(buffer_.data()))) {
      error = net::error::invalid_argument;
      return std::nullopt;
    }
    return frame;
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<wire::ServerFrame> pushed_;
  std::deque<wire::ServerFrame> split_;
  std::uint64_t last_id_ = 0;
};

}  // namespace haven::test
