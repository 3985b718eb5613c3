#pragma once
// Key layout: fixed-width big-endian fields, so byte order is numeric order
// and every prefix iterates in order (docs/ARCHITECTURE.md, "Storage").
//
//   accounts  mailbox(16)                                -> AccountRecord
//   prekeys   mailbox(16) device(4) kind(1) id(4)        -> wire SignedPrekey/OneTimePrekey
//   queue     mailbox(16) device(4)                      -> last seq(8) count(8)
//   queue     mailbox(16) device(4) seq(8)               -> wire ServerFrame (push),
//                                                           or a group reference:
//             0x00 group(16) body seq(8) envelope id(16) received_at(8)
//             (a serialized ServerFrame never starts with 0x00: no field is 0)
//   groups    group(16)                                  -> GroupRecord
//   bodies    group(16)                                  -> last body seq(8)
//   bodies    group(16) seq(8)                           -> the sealed body, stored once
//   bodies    group(16) seq(8) "r"                       -> references left(8)
//   orgs      org(16)                                    -> OrgRecord
//   invites   BLAKE2b-256(token)(32)                     -> InviteRecord
//   vault     vault id(16)                               -> VaultRecord
//   default   "server_id"                                -> 16 random bytes

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "haven/store/store.hpp"

namespace haven::store::keys {

inline constexpr std::size_t queue_prefix_size = 20;
inline constexpr std::size_t queue_key_size = 28;
inline constexpr std::size_t prekey_prefix_size = 21;  // mailbox, device, kind

inline void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

inline std::uint64_t get_be(std::string_view in, std::size_t offset, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[offset + i]);
  return v;
}

template <std::size_t N>
std::string_view view(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

template <std::size_t N>
std::string bytes(const std::array<std::uint8_t, N>& a) {
  return std::string(view(a));
}

inline std::string account(const mailbox_id& m) { return std::string(view(m)); }

inline std::string queue_prefix(const device_address& d) {
  std::string k(view(d.mailbox));
  put_be(k, d.device, 4);
  return k;
}

inline std::string queue_entry(const device_address& d, std::uint64_t seq) {
  std::string k = queue_prefix(d);
  put_be(k, seq, 8);
  return k;
}

inline std::string body(const group_id& g, std::uint64_t seq) {
  std::string k(view(g));
  put_be(k, seq, 8);
  return k;
}

inline std::string body_refs(const group_id& g, std::uint64_t seq) { return body(g, seq) + "r"; }

// A queue entry that points at a group body instead of holding a frame.
struct group_ref {
  static constexpr std::size_t size = 49;
  group_id group{};
  std::uint64_t body_seq = 0;
  envelope_id envelope{};
  std::int64_t received_at = 0;

  [[nodiscard]] static bool is(std::string_view value) {
    return !value.empty() && value.front() == '\0';
  }
  [[nodiscard]] std::string encode() const {
    std::string v(1, '\0');
    v += view(group);
    put_be(v, body_seq, 8);
    v += view(envelope);
    put_be(v, static_cast<std::uint64_t>(received_at), 8);
    return v;
  }
  // False if `value` is not a well-formed reference.
  [[nodiscard]] bool decode(std::string_view value) {
    if (value.size() != size || !is(value)) return false;
    std::copy_n(value.begin() + 1, 16, group.begin());
    body_seq = get_be(value, 17, 8);
    std::copy_n(value.begin() + 25, 16, envelope.begin());
    received_at = static_cast<std::int64_t>(get_be(value, 41, 8));
    return true;
  }
};

inline std::string prekey_prefix(const device_address& d, wire::PrekeyKind kind) {
  std::string k = queue_prefix(d);
  k.push_back(static_cast<char>(kind));
  return k;
}

inline std::string prekey(const device_address& d, wire::PrekeyKind kind, std::uint32_t id) {
  std::string k = prekey_prefix(d, kind);
  put_be(k, id, 4);
  return k;
}

}  // namespace haven::store::keys
