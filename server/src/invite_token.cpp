#include "haven/server/invite_token.hpp"

#include <cctype>

#include "haven/crypto/verify.hpp"

namespace haven::server {
namespace {
constexpr std::string_view k_alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t k_chars = 24;  // 15 bytes
}  // namespace

std::string make_invite_token() {
  std::array<std::uint8_t, 15> raw{};
  crypto::random_fill(raw);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (auto byte : raw) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      if (!out.empty() && (out.size() + 1) % 5 == 0) out.push_back('-');
      out.push_back(k_alphabet[(acc >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  return out;
}

std::optional<std::string> normalise_invite_token(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '-' || c == ' ') continue;
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (c == 'I' || c == 'L') c = '1';
    if (c == 'O') c = '0';
    if (k_alphabet.find(c) == std::string_view::npos) return std::nullopt;
    out.push_back(c);
    if (out.size() > k_chars) return std::nullopt;
  }
  if (out.size() != k_chars) return std::nullopt;
  return out;
}

std::array<std::uint8_t, 32> invite_token_hash(std::string_view normalised) {
  return crypto::hash256(
      {reinterpret_cast<const std::uint8_t*>(normalised.data()), normalised.size()});
}

}  // namespace haven::server
