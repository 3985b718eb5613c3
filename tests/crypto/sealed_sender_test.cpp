#include <catch2/catch.hpp>

#include "e2e.pb.h"
#include "haven/crypto/aead.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/padding.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "session_fixture.hpp"

using namespace haven::crypto;
using namespace haven::crypto::test;

namespace {

mailbox_id mailbox_of(std::uint8_t n) {
  mailbox_id m{};
  m.fill(n);
  return m;
}

}  // namespace

TEST_CASE("a sealed prekey message opens for its recipient and names the verified sender", "[sealed]") {
  party alice(21), bob(22);
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random).value();
  auto m = send(a, "sealed hello");
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(0xA1), 3);
  auto sealed = seal(alice.identity, cert, bob.identity.public_keys(), content_type::prekey_message, m.bytes,
                     alice.random)
                    .value();
  auto opened = open_sealed(bob.identity, sealed);
  REQUIRE(opened);
  CHECK(opened->sender == cert);
  CHECK(opened->sender.device_id == 3);
  CHECK(opened->type == content_type::prekey_message);
  auto b = bob.accept({message_type::prekey, opened->message});
  CHECK(text(b.decrypt({message_type::prekey, opened->message}, bob.random).value()) == "sealed hello");
}

TEST_CASE("sealed sizes fall into the padding buckets", "[sealed][padding]") {
  party alice(23), bob(24);
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(1), 1);
  for (std::size_t n : {0u, 10u, 200u, 1000u, 5000u}) {
    auto s = seal(alice.identity, cert, bob.identity.public_keys(), content_type::ratchet_message,
                  std::vector<std::uint8_t>(n, 7), alice.random)
                 .value();
    const std::size_t overhead = 1 + 32 + 48 + 16;
    const std::size_t body = s.size() - overhead;
    CHECK(padded_size(body - 1) == body);  // a bucket size
  }
}

TEST_CASE("a seal for Bob does not open for Carol (re-targeted delivery)", "[sealed]") {
  party alice(25), bob(26), carol(27);
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(2), 1);
  auto sealed =
      seal(alice.identity, cert, bob.identity.public_keys(), content_type::ratchet_message, bytes("hi"), alice.random)
          .value();
  auto r = open_sealed(carol.identity, sealed);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::decryption_failed);
}

TEST_CASE("a recipient cannot re-seal a sender's content to someone else under the sender's name", "[sealed]") {
  party alice(28), bob(29), carol(30);
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(3), 1);
  auto sealed =
      seal(alice.identity, cert, bob.identity.public_keys(), content_type::ratchet_message, bytes("hi"), alice.random)
          .value();
  auto opened = open_sealed(bob.identity, sealed).value();
  // Bob cannot seal as Alice: seal() refuses a certificate that is not his...
  CHECK(seal(bob.identity, opened.sender, carol.identity.public_keys(), content_type::ratchet_message,
             opened.message, bob.random)
            .error() == errc::invalid_argument);
}

namespace {

// Seals by hand from docs/PROTOCOL.md section 6, so a test can do what
// seal() refuses to: put one identity's certificate under another's key.
std::vector<std::uint8_t> seal_by_hand(const x25519_key_pair& static_key, const x25519_public_key& claimed_dh,
                                       const sender_certificate& cert, const public_identity& r,
                                       std::uint8_t ephemeral_seed) {
  haven::e2e::SealedContent content;
  *content.mutable_sender() = cert.to_wire();
  content.set_type(haven::e2e::CONTENT_TYPE_RATCHET_MESSAGE);
  content.set_message("forged");
  const std::string plain = content.SerializeAsString();
  const auto padded = pad(ascii(plain)).value();
  auto e = x25519_key_pair::generate(seeded(ephemeral_seed));
  auto shared_e = x25519(e, r.dh_key).value();
  std::vector<std::uint8_t> salt(e.public_key().begin(), e.public_key().end());
  salt.insert(salt.end(), r.dh_key.begin(), r.dh_key.end());
  std::array<std::uint8_t, 88> okm1{};
  REQUIRE(hkdf(salt, shared_e.view(), ascii("haven-seal-ephemeral-v1"), okm1));
  std::vector<std::uint8_t> ad1 = {1};
  ad1.insert(ad1.end(), e.public_key().begin(), e.public_key().end());
  ad1.insert(ad1.end(), r.signing_key.begin(), r.signing_key.end());
  ad1.insert(ad1.end(), r.dh_key.begin(), r.dh_key.end());
  const auto c_static = aead_seal(byte_view(okm1).subspan(0, 32), byte_view(okm1).subspan(32, 24), ad1, claimed_dh);
  auto shared_s = x25519(static_key, r.dh_key).value();
  std::array<std::uint8_t, 56> okm2{};
  REQUIRE(hkdf(byte_view(okm1).subspan(56, 32), shared_s.view(), ascii("haven-seal-static-v1"), okm2));
  std::vector<std::uint8_t> ad2 = {1};
  ad2.insert(ad2.end(), e.public_key().begin(), e.public_key().end());
  ad2.insert(ad2.end(), c_static.begin(), c_static.end());
  ad2.insert(ad2.end(), r.signing_key.begin(), r.signing_key.end());
  ad2.insert(ad2.end(), r.dh_key.begin(), r.dh_key.end());
  const auto c_content = aead_seal(byte_view(okm2).subspan(0, 32), byte_view(okm2).subspan(32, 24), ad2, padded);
  std::vector<std::uint8_t> out = {1};
  out.insert(out.end(), e.public_key().begin(), e.public_key().end());
  out.insert(out.end(), c_static.begin(), c_static.end());
  out.insert(out.end(), c_content.begin(), c_content.end());
  return out;
}

}  // namespace

TEST_CASE("a seal built by hand from the spec opens like seal()'s", "[sealed]") {
  party alice(31), bob(32);
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(4), 1);
  auto s = seal_by_hand(alice.identity.dh(), alice.identity.public_keys().dh_key, cert, bob.identity.public_keys(), 9);
  auto opened = open_sealed(bob.identity, s);
  REQUIRE(opened);
  CHECK(opened->sender == cert);
  CHECK(text(opened->message) == "forged");
}

TEST_CASE("a forged seal carrying someone else's certificate is refused", "[sealed]") {
  party alice(33), bob(34), mallory(35);
  auto alice_cert = sender_certificate::issue(alice.identity, mailbox_of(5), 1);
  // Mallory seals honestly with her own key but encloses Alice's certificate.
  auto s1 = seal_by_hand(mallory.identity.dh(), mallory.identity.public_keys().dh_key, alice_cert,
                         bob.identity.public_keys(), 10);
  CHECK(open_sealed(bob.identity, s1).error() == errc::identity_mismatch);
  // Mallory claims Alice's key as the sealer but cannot do Alice's DH.
  auto s2 = seal_by_hand(mallory.identity.dh(), alice.identity.public_keys().dh_key, alice_cert,
                         bob.identity.public_keys(), 11);
  CHECK(open_sealed(bob.identity, s2).error() == errc::decryption_failed);
}

TEST_CASE("a certificate whose identity was swapped does not verify", "[sealed]") {
  party alice(36), mallory(37);
  auto cert = sender_certificate::issue(mallory.identity, mailbox_of(6), 1);
  auto w = cert.to_wire();
  *w.mutable_identity() = alice.identity.public_keys().to_wire();
  CHECK(sender_certificate::from_wire(w).error() == errc::bad_signature);
}

TEST_CASE("any tampered byte of a sealed envelope is refused", "[sealed]") {
  party alice(37), bob(38);
  auto cert = sender_certificate::issue(alice.identity, mailbox_of(6), 1);
  auto sealed =
      seal(alice.identity, cert, bob.identity.public_keys(), content_type::ratchet_message, bytes("hi"), alice.random)
          .value();
  for (std::size_t at = 0; at < sealed.size(); at += 7) {
    auto bad = sealed;
    bad[at] ^= 0x20;
    CHECK_FALSE(open_sealed(bob.identity, bad));
  }
  CHECK(open_sealed(bob.identity, std::vector<std::uint8_t>(50, 1)).error() == errc::malformed_message);
  auto v2 = sealed;
  v2[0] = 2;
  CHECK(open_sealed(bob.identity, v2).error() == errc::unsupported_version);
}

TEST_CASE("a sealed prekey message whose initiator is not the certified sender is refused", "[sealed]") {
  party alice(39), bob(40), mallory(41);
  auto a = session::initiate(alice.identity, bob.bundle(), alice.random).value();
  auto m = send(a, "from alice");
  // Mallory wraps Alice's prekey message in her own seal.
  auto cert = sender_certificate::issue(mallory.identity, mailbox_of(7), 1);
  auto sealed = seal(mallory.identity, cert, bob.identity.public_keys(), content_type::prekey_message, m.bytes,
                     mallory.random)
                    .value();
  CHECK(open_sealed(bob.identity, sealed).error() == errc::identity_mismatch);
}
