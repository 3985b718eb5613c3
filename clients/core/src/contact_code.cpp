#include "contact_code.hpp"

#include <array>

#include "haven/crypto/encoding.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::client {
namespace {

constexpr std::uint8_t k_version = 1;
constexpr std::size_t k_size = 1 + 16 + 32 + 32 + 64 + 32 + 4;
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
  return crypto::to_base64url(crypto::bytes_of(bytes));
}

result<contact_code_fields> decode_contact_code(std::string_view code) {
  const auto bad = std::unexpected(make_error_code(errc::bad_contact_code));
  // Tolerate what copy and paste adds: spaces and line breaks.
  std::string compact;
  for (char c : code)
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact.push_back(c);
  const auto decoded = crypto::from_base64url(compact);
  if (!decoded || decoded->size() != k_size || (*decoded)[0] != k_version) return bad;
  const std::string bytes(decoded->begin(), decoded->end());
  const std::string_view view(bytes);
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
