#pragma once
// RFC 6455 for the load generator's side of a connection: the opening
// handshake and frames in and out, no I/O. Its own and not Beast's
// websocket::stream because a connection reads whatever the socket holds in
// one call and takes every frame in it: Beast reads a frame's head into a
// 1.5 KiB buffer and its payload with another call, and the load generator
// shares havend's two cores (docs/BENCHMARKS.md, group fan-out).
//
// Only what havend sends is understood: unmasked, unfragmented frames with
// no extensions.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace haven::bench_util::ws {

enum class opcode : std::uint8_t { binary = 2, close = 8, ping = 9, pong = 10 };

constexpr std::uint64_t k_max_message = 64 << 20;

// A fixed key is enough on loopback: it guards against caches, not
// attackers. RFC 6455 section 1.3 gives its accept value, so the check of
// havend's answer needs no SHA-1 here.
constexpr std::string_view k_handshake_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view k_handshake_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

inline std::string handshake_request(std::string_view host, std::string_view target) {
  std::string r;
  r.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  r.append(
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: ");
  r.append(k_handshake_key).append("\r\n\r\n");
  return r;
}

// The size of the handshake response at the front of `in`, 0 while it is
// incomplete, or why it refuses the upgrade.
inline std::expected<std::size_t, std::string> handshake_response(std::string_view in) {
  const auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in.size() > 8192) return std::unexpected("handshake response over 8 KiB");
    return 0;
  }
  const auto head = in.substr(0, end + 2);
  if (!head.starts_with("HTTP/1.1 101 "))
    return std::unexpected("handshake refused: " + std::string(head.substr(0, head.find('\r'))));
  // Header names are case-insensitive; havend writes this one so.
  if (head.find(std::string("\r\nSec-WebSocket-Accept: ").append(k_handshake_accept) + "\r\n") ==
      std::string_view::npos)
    return std::unexpected(std::string("handshake response without the right accept key"));
  return end + 4;
}

// A frame at the front of a connection's input.
struct frame {
  opcode op = opcode::binary;
  std::span<const std::uint8_t> payload;
  std::size_t size = 0;  // the whole frame, head included
};

// The frame at the front of `in`; nullopt while it is incomplete, with
// `wanted` set to its whole size once its head is in.
inline std::expected<std::optional<frame>, std::string> next_frame(std::span<const std::uint8_t> in,
                                                                   std::size_t& wanted) {
  wanted = 0;
  if (in.size() < 2) return std::nullopt;
  if ((in[0] & 0x80) == 0) return std::unexpected(std::string("a fragmented message"));
  if ((in[0] & 0x70) != 0) return std::unexpected(std::string("a frame with reserved bits set"));
  if ((in[1] & 0x80) != 0) return std::unexpected(std::string("a masked frame from the server"));
  const auto op = static_cast<std::uint8_t>(in[0] & 0x0f);
  if (op != 2 && op != 8 && op != 9 && op != 10)
    return std::unexpected("a frame with opcode " + std::to_string(op));
  std::size_t head = 2;
  std::uint64_t length = in[1] & 0x7f;
  if (length >= 126) {
    const std::size_t bytes = length == 126 ? 2 : 8;
    if (in.size() < 2 + bytes) return std::nullopt;
    length = 0;
    for (std::size_t i = 0; i < bytes; ++i) length = (length << 8) | in[2 + i];
    head += bytes;
  }
  if (length > k_max_message) return std::unexpected(std::string("a message over 64 MiB"));
  wanted = head + static_cast<std::size_t>(length);
  if (in.size() < wanted) return std::nullopt;
  return frame{static_cast<opcode>(op), in.subspan(head, static_cast<std::size_t>(length)), wanted};
}

// A client frame (masked with `mask`, as RFC 6455 requires of clients).
inline std::string client_frame(opcode op, std::string_view payload, std::uint32_t mask) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(op)));
  const auto n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    for (int shift = 8; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>(static_cast<std::uint64_t>(n) >> shift));
  }
  char key[4];
  std::memcpy(key, &mask, 4);
  out.append(key, 4);
  const auto at = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i) out[at + i] = static_cast<char>(out[at + i] ^ key[i % 4]);
  return out;
}

}  // namespace haven::bench_util::ws
