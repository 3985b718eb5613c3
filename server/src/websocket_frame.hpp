#pragma once
// RFC 6455 for havend's side of a connection: the handshake's accept key,
// and frames in and out. No I/O: a session reads bytes, asks frame_reader
// what they hold, and writes what write_head and control_frame make.
//
// Our own and not Beast's websocket::stream because of idle memory: that
// stream keeps a 1.5 KiB read buffer and seven saved handlers in every
// connection (docs/BENCHMARKS.md, Memory). Only what havend needs is here:
// server role, no extensions, messages up to a cap.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace haven::server::ws {

enum class opcode : std::uint8_t {
  continuation = 0,
  text = 1,
  binary = 2,
  close = 8,
  ping = 9,
  pong = 10,
};

// The close codes havend sends (RFC 6455 section 7.4.1).
enum class close_code : std::uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  unknown_data = 1003,
  policy_error = 1008,
  too_big = 1009,
  try_again_later = 1013,
};

// Sec-WebSocket-Accept for a request's Sec-WebSocket-Key; nullopt unless
// the key is the base64 of 16 bytes.
[[nodiscard]] std::optional<std::string> accept_key(std::string_view key);

// What the bytes at the front of a connection's input hold.
struct event {
  enum kind_t : std::uint8_t { need_more, message, ping, pong, close };
  kind_t kind = need_more;
  bool text = false;  // message: a text message, which havend refuses
  // message: the whole message; ping: its payload, for the pong. Points
  // into the input (unmasked there) or into the reader; valid until the
  // next call.
  std::span<const std::uint8_t> payload;
  close_code code = close_code::normal;  // close: the code to answer with
  std::size_t used = 0;    // bytes of the input this event took
  std::size_t wanted = 0;  // need_more: bytes still missing for the next frame
};

// Why a connection's input cannot be read on: the close to send.
struct failure {
  close_code code;
  const char* reason;
};

// Takes a client's frames apart, one event at a time: unmasks them in
// place, joins fragments, answers which control frame came. A frame is
// taken only once all of it is in, so the caller keeps unused bytes.
class frame_reader {
 public:
  // Decodes the next event at the front of `in`; `max_message` caps a
  // message's size, fragments together.
  [[nodiscard]] std::expected<event, failure> next(std::span<std::uint8_t> in,
                                                   std::size_t max_message);

 private:
  std::string fragments_;  // a fragmented message so far
  bool in_message_ = false;
  bool text_ = false;
};

// A data or control frame's header from havend (final, unmasked) at `out`,
// which has room for 10 bytes; returns its size.
std::size_t write_head(opcode op, std::size_t length, std::uint8_t* out);

// A whole ping, pong or close frame; at most 125 bytes of payload are kept.
[[nodiscard]] std::string control_frame(opcode op, std::span<const std::uint8_t> payload);
[[nodiscard]] std::string close_frame(close_code code, std::string_view reason);

}  // namespace haven::server::ws
