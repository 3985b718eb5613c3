#include "contact_code.hpp"

#include <array>

#include "haven/crypto/identity.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::client {
namespace {

constexpr std::uint8_t k_version = 1;
constexpr std::size_t k_size = 1 + 16 + 32 + 32 + 64 + 32 + 4;
constexpr std::string_view k_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const std::string& in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      out.push_back(k_alphabet[(acc >> (bits - 6)) & 63]);
      bits -= 6;
    }
  }
  if (bits > 0) out.push_back(k_alphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::optional<std::string> from_base64url(std::string_view in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto v = k_alphabet.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      out.push_back(static_cast<char>((acc >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

std::string checksum(std::string_view body) {
  const auto h = crypto::hash256(crypto::bytes_of(body));
  return {reinterpret_cast<const char*>(h.data()), 4};
}

}  // namespace

std::string encode_contact_code(const contact_code_fields& f) {
  std::string bytes(1, static_cast<char>(k_version));
  bytes += f.mailbox_id;
  bytes += f.identity.signing_key();
  bytes += f.identity.dh_key();
  bytes += f.identity.dh_key_signature();
  bytes += f.access_key;
  bytes += checksum(bytes);
  return base64url(bytes);
}

result<contact_code_fields> decode_contact_code(std::string_view code) {
  const auto bad = std::unexpected(make_error_code(errc::bad_contact_code));
  // Tolerate what copy and paste adds: spaces and line breaks.
  std::string compact;
  for (char c : code)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact.push_back(c);
  auto bytes = from_base64url(compact);
  if (!bytes || bytes->size() != k_size || static_cast<std::uint8_t>((*bytes)[0]) != k_version)
    return bad;
  const std::string_view view(*bytes);
  if (checksum(view.substr(0, k_size - 4)) != view.substr(k_size - 4)) return bad;
  contact_code_fields f;
  f.mailbox_id = std::string(view.substr(1, 16));
  f.identity.set_signing_key(std::string(view.substr(17, 32)));
  f.identity.set_dh_key(std::string(view.substr(49, 32)));
  f.identity.set_dh_key_signature(std::string(view.substr(81, 64)));
  f.access_key = std::string(view.substr(145, 32));
  if (!crypto::public_identity::from_wire(f.identity)) return bad;
  return f;
}

}  // namespace haven::client
