#include "websocket_frame.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace haven::server::ws {

namespace {

constexpr std::size_t k_max_control_payload = 125;

std::expected<event, failure> fail(close_code code, const char* reason) {
  return std::unexpected(failure{code, reason});
}

void unmask(std::uint8_t* p, std::size_t n, const std::uint8_t* key) {
  std::uint32_t key32 = 0;
  std::memcpy(&key32, key, 4);
  const std::uint64_t key64 = (std::uint64_t{key32} << 32) | key32;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p + i, 8);
    word ^= key64;
    std::memcpy(p + i, &word, 8);
  }
  for (; i < n; ++i) p[i] ^= key[i & 3];
}

bool valid_utf8(std::span<const std::uint8_t> s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = s[i];
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    constexpr std::array<std::uint32_t, 4> least{0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool valid_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace

std::optional<std::string> accept_key(std::string_view key) {
  // 16 bytes in base64: 22 characters and "==".
  if (key.size() != 24 || key.substr(22) != "==" || key.substr(0, 22).find('=') != key.npos)
    return std::nullopt;
  std::array<unsigned char, 18> decoded{};
  if (EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(key.data()), 24) !=
      18)
    return std::nullopt;
  const std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr) !=
      1)
    return std::nullopt;
  std::array<unsigned char, 29> encoded{};  // 20 bytes: 28 characters and a NUL
  const int size = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(size));
}

std::expected<event, failure> frame_reader::next(std::span<std::uint8_t> in,
                                                 std::size_t max_message) {
  if (!in_message_ && !fragments_.empty()) {
    fragments_.clear();  // the joined message was handed out by the last call
    fragments_.shrink_to_fit();
  }
  std::size_t used = 0;
  for (;;) {
    const auto rest = in.subspan(used);
    const auto need = [&](std::size_t bytes) {
      return event{.kind = event::need_more, .payload = {}, .used = used,
                   .wanted = bytes - rest.size()};
    };
    if (rest.size() < 2) return need(2);
    const bool fin = (rest[0] & 0x80) != 0;
    const auto op = static_cast<opcode>(rest[0] & 0x0F);
    const std::uint8_t length7 = rest[1] & 0x7F;
    if ((rest[0] & 0x70) != 0) return fail(close_code::protocol_error, "reserved bits set");
    if ((rest[1] & 0x80) == 0) return fail(close_code::protocol_error, "frame not masked");
    const std::size_t length_size = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
    const std::size_t head = 2 + length_size + 4;
    if (rest.size() < head) return need(head);
    std::uint64_t length = length7;
    if (length_size > 0) {
      length = 0;
      for (std::size_t i = 0; i < length_size; ++i) length = (length << 8) | rest[2 + i];
      if ((length_size == 2 && length < 126) || (length_size == 8 && length <= 0xFFFF))
        return fail(close_code::protocol_error, "frame length not in its shortest form");
      if (length >> 63) return fail(close_code::protocol_error, "frame length too large");
    }

    const bool control = (rest[0] & 0x08) != 0;
    if (control) {
      if (op != opcode::close && op != opcode::ping && op != opcode::pong)
        return fail(close_code::protocol_error, "unknown opcode");
      if (!fin) return fail(close_code::protocol_error, "fragmented control frame");
      if (length > k_max_control_payload)
        return fail(close_code::protocol_error, "control frame over 125 bytes");
    } else {
      if (op != opcode::continuation && op != opcode::text && op != opcode::binary)
        return fail(close_code::protocol_error, "unknown opcode");
      if (op == opcode::continuation && !in_message_)
        return fail(close_code::protocol_error, "continuation frame outside a message");
      if (op != opcode::continuation && in_message_)
        return fail(close_code::protocol_error, "new message before the last one ended");
      if (length > max_message - fragments_.size())
        return fail(close_code::too_big, "message too big");
    }
    if (rest.size() - head < length) return need(head + static_cast<std::size_t>(length));

    auto payload = rest.subspan(head, static_cast<std::size_t>(length));
    unmask(payload.data(), payload.size(), rest.data() + head - 4);
    used += head + payload.size();

    if (op == opcode::ping) return event{.kind = event::ping, .payload = payload, .used = used};
    if (op == opcode::pong) return event{.kind = event::pong, .payload = {}, .used = used};
    if (op == opcode::close) {
      auto code = close_code::normal;  // no code given: a normal close
      if (payload.size() == 1) return fail(close_code::protocol_error, "close frame of 1 byte");
      if (payload.size() >= 2) {
        const auto value = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
        if (!valid_close_code(value)) return fail(close_code::protocol_error, "bad close code");
        if (!valid_utf8(payload.subspan(2)))
          return fail(close_code::protocol_error, "close reason not UTF-8");
        code = static_cast<close_code>(value);
      }
      return event{.kind = event::close, .payload = {}, .code = code, .used = used};
    }
    if (fin && !in_message_)
      return event{.kind = event::message, .text = op == opcode::text, .payload = payload,
                   .used = used};
    if (!in_message_) {
      in_message_ = true;
      text_ = op == opcode::text;
    }
    fragments_.append(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (fin) {
      in_message_ = false;  // the next call frees the joined message
      const auto* joined = reinterpret_cast<const std::uint8_t*>(fragments_.data());
      return event{.kind = event::message, .text = text_,
                   .payload = std::span(joined, fragments_.size()),
                   .used = used};
    }
  }
}

std::size_t write_head(opcode op, std::size_t length, std::uint8_t* out) {
  out[0] = static_cast<std::uint8_t>(0x80 | static_cast<std::uint8_t>(op));
  if (length < 126) {
    out[1] = static_cast<std::uint8_t>(length);
    return 2;
  }
  const std::size_t length_size = length <= 0xFFFF ? 2 : 8;
  out[1] = length_size == 2 ? 126 : 127;
  for (std::size_t i = 0; i < length_size; ++i)
    out[2 + i] = static_cast<std::uint8_t>(length >> (8 * (length_size - 1 - i)));
  return 2 + length_size;
}

std::string control_frame(opcode op, std::span<const std::uint8_t> payload) {
  payload = payload.first(std::min(payload.size(), k_max_control_payload));
  std::array<std::uint8_t, 10> head{};
  const auto head_size = write_head(op, payload.size(), head.data());
  std::string frame(reinterpret_cast<const char*>(head.data()), head_size);
  frame.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return frame;
}

std::string close_frame(close_code code, std::string_view reason) {
  const auto value = static_cast<std::uint16_t>(code);
  std::string payload{static_cast<char>(value >> 8), static_cast<char>(value & 0xFF)};
  payload.append(reason.substr(0, k_max_control_payload - 2));
  return control_frame(opcode::close, std::span(reinterpret_cast<const std::uint8_t*>(
                                                    payload.data()),
                                                payload.size()));
}

}  // namespace haven::server::ws
