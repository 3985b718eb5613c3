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

std::string to_base64url(byte_view bytes) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), variant);
  out.pop_back();  // the terminating NUL
  return out;
}

std::optional<std::vector<std::uint8_t>> from_base64url(std::string_view text) {
  if (text.empty()) return std::vector<std::uint8_t>{};
  std::vector<std::uint8_t> out(text.size() * 3 / 4 + 1);
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(written);
  return out;
}

}  // namespace haven::crypto
