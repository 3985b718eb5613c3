#include <catch2/catch.hpp>

#include "haven/crypto/identity.hpp"
#include "test_support.hpp"

using namespace haven::crypto;
using haven::crypto::test::seeded;
namespace wire = haven::wire;

namespace {

struct device_keys {
  identity_key_pair identity;
  signed_prekey spk;
  signed_prekey last_resort;
  std::vector<one_time_prekey> one_time;
};

device_keys make_device(std::uint8_t seed) {
  auto rnd = seeded(seed);
  auto id = identity_key_pair::generate(rnd);
  auto spk = generate_signed_prekey(id, 7, prekey_kind::signed_prekey, rnd);
  auto lr = generate_signed_prekey(id, 8, prekey_kind::last_resort, rnd);
  auto otk = generate_one_time_prekeys(100, 3, rnd);
  return {std::move(id), std::move(spk), std::move(lr), std::move(otk)};
}

wire::DevicePrekeys wire_device(const device_keys& d, bool with_one_time) {
  wire::DevicePrekeys w;
  w.set_device_id(1);
  *w.mutable_signed_prekey() = d.spk.public_part().to_wire();
  if (with_one_time)
    *w.mutable_one_time() = d.one_time[0].public_part().to_wire();
  else
    *w.mutable_last_resort() = d.last_resort.public_part().to_wire();
  return w;
}

}  // namespace

TEST_CASE("a generated identity's DH key signature verifies with the relay's layout", "[identity]") {
  auto d = make_device(1);
  const auto& pub = d.identity.public_keys();
  CHECK(verify_ed25519(pub.signing_key, bytes_of(identity_dh_message(pub.dh_key)), pub.dh_key_signature));
  auto parsed = public_identity::from_wire(pub.to_wire());
  REQUIRE(parsed);
  CHECK(*parsed == pub);
}

TEST_CASE("an identity rebuilt from its secrets is the same identity", "[identity]") {
  auto d = make_device(2);
  auto seed = d.identity.signing().seed();
  auto again = identity_key_pair::from_secrets(std::span<const std::uint8_t, 32>(seed.data(), 32),
                                               std::span<const std::uint8_t, 32>(d.identity.dh().secret().data(), 32));
  CHECK(again.public_keys() == d.identity.public_keys());
}

TEST_CASE("a valid bundle verifies, with a one-time or a last-resort key", "[identity][bundle]") {
  auto d = make_device(3);
  auto b = verify_bundle(d.identity.public_keys().to_wire(), wire_device(d, true));
  REQUIRE(b);
  CHECK(b->signed_prekey.id == 7);
  REQUIRE(b->one_time);
  CHECK(b->one_time->id == 100);
  CHECK_FALSE(b->last_resort);
  auto lr = verify_bundle(d.identity.public_keys().to_wire(), wire_device(d, false));
  REQUIRE(lr);
  REQUIRE(lr->last_resort);
  CHECK(lr->last_resort->kind == prekey_kind::last_resort);
  // The signed bytes are exactly what the relay builds.
  CHECK(verify_ed25519(d.identity.public_keys().signing_key,
                       bytes_of(prekey_message(3, 8, d.last_resort.key.public_key())), d.last_resort.signature));
}

TEST_CASE("a bundle with a bad signed-prekey signature is refused", "[identity][bundle]") {
  auto d = make_device(4);
  auto w = wire_device(d, true);
  auto sig = w.signed_prekey().signature();
  sig[5] = static_cast<char>(sig[5] ^ 1);
  w.mutable_signed_prekey()->set_signature(sig);
  auto b = verify_bundle(d.identity.public_keys().to_wire(), w);
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::bad_signature);
}

TEST_CASE("a last-resort key signed as a signed prekey is refused (kind is bound)", "[identity][bundle]") {
  auto d = make_device(5);
  auto w = wire_device(d, true);
  *w.mutable_last_resort() = d.spk.public_part().to_wire();  // signed with kind 1, presented as kind 3
  auto b = verify_bundle(d.identity.public_keys().to_wire(), w);
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::bad_signature);
}

TEST_CASE("a bundle whose identity DH signature is bad is refused", "[identity][bundle]") {
  auto d = make_device(6);
  auto other = make_device(7);
  auto idw = d.identity.public_keys().to_wire();
  idw.set_dh_key(other.identity.public_keys().to_wire().dh_key());
  auto b = verify_bundle(idw, wire_device(d, true));
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::bad_signature);
}

TEST_CASE("a low-order prekey is refused even when properly signed", "[identity][bundle]") {
  auto d = make_device(8);
  // u = 0 and u = 1 are low-order points; sign them as a malicious owner could.
  for (std::uint8_t u : {0, 1}) {
    x25519_public_key weak{};
    weak[0] = u;
    signed_prekey_public p{9, prekey_kind::signed_prekey, weak, {}};
    p.signature = d.identity.signing().sign(bytes_of(prekey_message(1, 9, weak)));
    wire::DevicePrekeys w;
    *w.mutable_signed_prekey() = p.to_wire();
    auto b = verify_bundle(d.identity.public_keys().to_wire(), w);
    REQUIRE_FALSE(b);
    CHECK(b.error() == errc::weak_key);
  }
  wire::DevicePrekeys w = wire_device(d, true);
  w.mutable_one_time()->set_public_key(std::string(32, '\0'));
  auto b = verify_bundle(d.identity.public_keys().to_wire(), w);
  REQUIRE_FALSE(b);
  CHECK(b.error() == errc::weak_key);
}

TEST_CASE("a bundle with wrong field sizes or no signed prekey is refused", "[identity][bundle]") {
  auto d = make_device(9);
  wire::DevicePrekeys none;
  CHECK(verify_bundle(d.identity.public_keys().to_wire(), none).error() == errc::invalid_argument);
  auto w = wire_device(d, true);
  w.mutable_signed_prekey()->set_public_key("short");
  CHECK(verify_bundle(d.identity.public_keys().to_wire(), w).error() == errc::invalid_argument);
}

TEST_CASE("X25519 refuses a low-order peer key instead of returning zeros", "[x25519]") {
  auto rnd = seeded(10);
  auto k = x25519_key_pair::generate(rnd);
  x25519_public_key zero{};
  auto r = x25519(k, zero);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::weak_key);
  CHECK(is_low_order(zero));
  CHECK_FALSE(is_low_order(k.public_key()));
}
