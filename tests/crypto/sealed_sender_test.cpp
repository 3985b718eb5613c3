#include <catch2/catch.hpp>

#include "e2e.pb.h"
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

TEST_CASE("a forged seal carrying someone else's certificate is refused", "[sealed]") {
  party alice(31), bob(32), mallory(33);
  auto alice_cert = sender_certificate::issue(alice.identity, mailbox_of(4), 1);
  // Mallory builds a seal by hand: her own static key, Alice's certificate.
  // Emulate by sealing with a cert whose identity is Alice's but keys Mallory's:
  // seal() refuses that, so construct the SealedContent path via a certificate
  // re-issued by Mallory claiming Alice's identity fields.
  auto forged = alice_cert;
  forged.identity = mallory.identity.public_keys();
  forged.mailbox = alice_cert.mailbox;  // Mallory claims Alice's mailbox...
  auto s = seal(mallory.identity, sender_certificate::issue(mallory.identity, alice_cert.mailbox, 1),
                bob.identity.public_keys(), content_type::ratchet_message, bytes("x"), mallory.random)
               .value();
  // ...but the opened certificate names Mallory's identity, not Alice's.
  auto opened = open_sealed(bob.identity, s).value();
  CHECK_FALSE(opened.sender.identity == alice.identity.public_keys());
}

TEST_CASE("a certificate that does not match the sealing key is refused", "[sealed]") {
  // Build a seal whose inner certificate is Alice's while Mallory's key sealed
  // it: possible only by calling the internals, so emulate by swapping the
  // identity inside a valid certificate and re-signing with Mallory's key.
  party alice(34), bob(35), mallory(36);
  auto cert = sender_certificate::issue(mallory.identity, mailbox_of(5), 1);
  auto w = cert.to_wire();
  *w.mutable_identity() = alice.identity.public_keys().to_wire();
  // The certificate signature no longer verifies under Alice's signing key.
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
