#include "haven/crypto/encoding.hpp"

#include <sodium.h>

namespace haven::crypto {

std::string to_hex(byte_view bytes) {
  if (bytes.empty()) return {};
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  if (hex.empty()) return std::vector<std::uint8_t>{};  // sodium_hex2bin wants a non-null buffer
  std::vector<std::uint8_t> out(hex.size() / 2);
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, &end) != 0 ||
      written != out.size() || end != hex.data() + hex.size())
    return std::nullopt;
  return out;
}

}  // namespace haven::crypto
