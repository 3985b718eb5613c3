#include "haven/crypto/identity.hpp"

#include <stdexcept>

#include "detail.hpp"

namespace haven::crypto {

using detail::as_string;
using detail::copy_exact;

namespace {

std::string identity_dh_signed_bytes(const x25519_public_key& dh_key) { return identity_dh_message(dh_key); }

std::string prekey_signed_bytes(prekey_kind kind, std::uint32_t id, const x25519_public_key& public_key) {
  return prekey_message(static_cast<std::uint8_t>(kind), id, public_key);
}

}  // namespace

result<public_identity> public_identity::from_wire(const wire::IdentityKeys& keys) {
  public_identity id;
  if (!copy_exact(id.signing_key, keys.signing_key()) || !copy_exact(id.dh_key, keys.dh_key()) ||
      !copy_exact(id.dh_key_signature, keys.dh_key_signature()))
    return fail(errc::invalid_argument);
  if (!verify_ed25519(id.signing_key, bytes_of(identity_dh_signed_bytes(id.dh_key)), id.dh_key_signature))
    return fail(errc::bad_signature);
  if (is_low_order(id.dh_key)) return fail(errc::weak_key);
  return id;
}

wire::IdentityKeys public_identity::to_wire() const {
  wire::IdentityKeys k;
  k.set_signing_key(as_string(signing_key));
  k.set_dh_key(as_string(dh_key));
  k.set_dh_key_signature(as_string(dh_key_signature));
  return k;
}

std::array<std::uint8_t, 64> public_identity::encoded() const noexcept {
  std::array<std::uint8_t, 64> out{};
  std::copy(signing_key.begin(), signing_key.end(), out.begin());
  std::copy(dh_key.begin(), dh_key.end(), out.begin() + 32);
  return out;
}

identity_key_pair::identity_key_pair(signing_key s, x25519_key_pair d) : signing_(std::move(s)), dh_(std::move(d)) {
  public_.signing_key = signing_.public_key();
  public_.dh_key = dh_.public_key();
  public_.dh_key_signature = signing_.sign(bytes_of(identity_dh_signed_bytes(public_.dh_key)));
}

identity_key_pair identity_key_pair::generate(const random_source& random) {
  auto s = signing_key::generate(random);
  auto d = x25519_key_pair::generate(random);
  return identity_key_pair(std::move(s), std::move(d));
}

identity_key_pair identity_key_pair::from_secrets(std::span<const std::uint8_t, 32> signing_seed,
                                                  std::span<const std::uint8_t, 32> dh_secret) {
  return identity_key_pair(signing_key::from_seed(signing_seed), x25519_key_pair::from_secret(dh_secret));
}

wire::SignedPrekey signed_prekey_public::to_wire() const {
  wire::SignedPrekey p;
  p.set_id(id);
  p.set_public_key(as_string(public_key));
  p.set_signature(as_string(signature));
  return p;
}

result<signed_prekey_public> signed_prekey_public::from_wire(const wire::SignedPrekey& p, prekey_kind kind,
                                                             const public_identity& identity) {
  signed_prekey_public out;
  out.id = p.id();
  out.kind = kind;
  if (!copy_exact(out.public_key, p.public_key()) || !copy_exact(out.signature, p.signature()))
    return fail(errc::invalid_argument);
  if (!verify_ed25519(identity.signing_key, bytes_of(prekey_signed_bytes(kind, out.id, out.public_key)), out.signature))
    return fail(errc::bad_signature);
  if (is_low_order(out.public_key)) return fail(errc::weak_key);
  return out;
}

signed_prekey_public signed_prekey::public_part() const { return {id, kind, key.public_key(), signature}; }

signed_prekey generate_signed_prekey(const identity_key_pair& identity, std::uint32_t id, prekey_kind kind,
                                     const random_source& random) {
  if (kind != prekey_kind::signed_prekey && kind != prekey_kind::last_resort)
    throw std::invalid_argument("generate_signed_prekey: kind must be signed or last resort");
  signed_prekey p;
  p.id = id;
  p.kind = kind;
  p.key = x25519_key_pair::generate(random);
  p.signature = identity.signing().sign(bytes_of(prekey_signed_bytes(kind, id, p.key.public_key())));
  return p;
}

wire::OneTimePrekey one_time_prekey_public::to_wire() const {
  wire::OneTimePrekey p;
  p.set_id(id);
  p.set_public_key(as_string(public_key));
  return p;
}

std::vector<one_time_prekey> generate_one_time_prekeys(std::uint32_t first_id, std::size_t count,
                                                       const random_source& random) {
  std::vector<one_time_prekey> keys;
  keys.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    keys.push_back({first_id + static_cast<std::uint32_t>(i), x25519_key_pair::generate(random)});
  return keys;
}

result<prekey_bundle> verify_bundle(const wire::IdentityKeys& identity, const wire::DevicePrekeys& device) {
  prekey_bundle b;
  auto id = public_identity::from_wire(identity);
  if (!id) return std::unexpected(id.error());
  b.identity = *id;
  b.device_id = device.device_id();
  if (!device.has_signed_prekey()) return fail(errc::invalid_argument);
  auto spk = signed_prekey_public::from_wire(device.signed_prekey(), prekey_kind::signed_prekey, b.identity);
  if (!spk) return std::unexpected(spk.error());
  b.signed_prekey = *spk;
  if (device.has_one_time()) {
    one_time_prekey_public otk;
    otk.id = device.one_time().id();
    if (!copy_exact(otk.public_key, device.one_time().public_key())) return fail(errc::invalid_argument);
    if (is_low_order(otk.public_key)) return fail(errc::weak_key);
    b.one_time = otk;
  }
  if (device.has_last_resort()) {
    auto lr = signed_prekey_public::from_wire(device.last_resort(), prekey_kind::last_resort, b.identity);
    if (!lr) return std::unexpected(lr.error());
    b.last_resort = *lr;
  }
  return b;
}

}  // namespace haven::crypto
