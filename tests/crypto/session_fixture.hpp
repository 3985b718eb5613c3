#pragma once
// Two parties with a fresh X3DH session, for ratchet tests.

#include <optional>
#include <string>
#include <vector>

#include "haven/crypto/identity.hpp"
#include "haven/crypto/session.hpp"
#include "test_support.hpp"

namespace haven::crypto::test {

struct party {
  random_source random;
  identity_key_pair identity;
  signed_prekey spk;
  signed_prekey last_resort;
  std::vector<one_time_prekey> one_time;

  explicit party(std::uint8_t seed)
      : random(seeded(seed)),
        identity(identity_key_pair::generate(random)),
        spk(generate_signed_prekey(identity, 1, prekey_kind::signed_prekey, random)),
        last_resort(generate_signed_prekey(identity, 2, prekey_kind::last_resort, random)),
        one_time(generate_one_time_prekeys(10, 2, random)) {}

  prekey_bundle bundle(bool with_one_time = true) const {
    haven::wire::DevicePrekeys w;
    w.set_device_id(1);
    *w.mutable_signed_prekey() = spk.public_part().to_wire();
    if (with_one_time)
      *w.mutable_one_time() = one_time[0].public_part().to_wire();
    else
      *w.mutable_last_resort() = last_resort.public_part().to_wire();
    return verify_bundle(identity.public_keys().to_wire(), w).value();
  }

  // The responder's side: the keys a prekey message names.
  session accept(const encrypted_message& first) const {
    auto header = parse_prekey_message(first.bytes).value();
    const x25519_key_pair* otk = nullptr;
    if (header.one_time_kind == prekey_kind::one_time) {
      for (const auto& k : one_time)
        if (k.id == header.one_time_id) otk = &k.key;
    } else if (header.one_time_kind == prekey_kind::last_resort) {
      otk = &last_resort.key;
    }
    return session::respond(identity, spk, otk, header).value();
  }
};

inline std::string text(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

inline encrypted_message send(session& s, std::string_view msg) {
  auto m = s.encrypt(bytes(msg));
  if (!m) throw std::runtime_error("encrypt failed: " + m.error().message());
  return *m;
}

}  // namespace haven::crypto::test
