#include "haven/crypto/sealed_sender.hpp"

#include <algorithm>

#include "detail.hpp"
#include "e2e.pb.h"
#include "haven/crypto/aead.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/kdf_labels.hpp"
#include "haven/crypto/padding.hpp"
#include "haven/crypto/session.hpp"

namespace haven::crypto {

using detail::as_bytes;
using detail::as_string;
using detail::byte_writer;
using detail::copy_exact;

namespace {

constexpr std::size_t static_ct_size = 32 + aead_tag_size;
constexpr std::size_t header_size = 1 + 32 + static_ct_size;

std::vector<std::uint8_t> certificate_bytes(const public_identity& id, const mailbox_id& mailbox,
                                            std::uint32_t device_id) {
  return byte_writer()
      .ascii(labels::sender_certificate)
      .bytes(id.signing_key)
      .bytes(id.dh_key)
      .bytes(mailbox)
      .u32(device_id)
      .take();
}

struct ephemeral_keys {
  secret_array<32> key;
  std::array<std::uint8_t, 24> nonce{};
  secret_array<32> chain;
};

ephemeral_keys derive_ephemeral(const x25519_public_key& e_pub, const public_identity& recipient,
                                const secret_array<32>& shared) {
  secret_array<88> okm;
  const auto salt = byte_writer().bytes(e_pub).bytes(recipient.dh_key).take();
  (void)hkdf(salt, shared.view(), ascii(labels::seal_ephemeral), okm.mutable_view());
  ephemeral_keys k;
  std::copy_n(okm.data(), 32, k.key.data());
  std::copy_n(okm.data() + 32, 24, k.nonce.data());
  std::copy_n(okm.data() + 56, 32, k.chain.data());
  return k;
}

struct static_keys {
  secret_array<32> key;
  std::array<std::uint8_t, 24> nonce{};
};

static_keys derive_static(const secret_array<32>& chain, const secret_array<32>& shared) {
  secret_array<56> okm;
  (void)hkdf(chain.view(), shared.view(), ascii(labels::seal_static), okm.mutable_view());
  static_keys k;
  std::copy_n(okm.data(), 32, k.key.data());
  std::copy_n(okm.data() + 32, 24, k.nonce.data());
  return k;
}

std::vector<std::uint8_t> static_ad(const x25519_public_key& e_pub, const public_identity& recipient) {
  return byte_writer().u8(sealed_version).bytes(e_pub).bytes(recipient.signing_key).bytes(recipient.dh_key).take();
}

std::vector<std::uint8_t> content_ad(const x25519_public_key& e_pub, byte_view c_static,
                                     const public_identity& recipient) {
  return byte_writer()
      .u8(sealed_version)
      .bytes(e_pub)
      .bytes(c_static)
      .bytes(recipient.signing_key)
      .bytes(recipient.dh_key)
      .take();
}

}  // namespace

sender_certificate sender_certificate::issue(const identity_key_pair& identity, const mailbox_id& mailbox,
                                             std::uint32_t device_id) {
  sender_certificate c;
  c.identity = identity.public_keys();
  c.mailbox = mailbox;
  c.device_id = device_id;
  c.signature = identity.signing().sign(certificate_bytes(c.identity, mailbox, device_id));
  return c;
}

result<sender_certificate> sender_certificate::from_wire(const e2e::SenderCertificate& w) {
  sender_certificate c;
  auto id = public_identity::from_wire(w.identity());
  if (!id) return std::unexpected(id.error());
  c.identity = *id;
  if (!copy_exact(c.mailbox, w.mailbox_id()) || !copy_exact(c.signature, w.signature()))
    return fail(errc::invalid_argument);
  c.device_id = w.device_id();
  if (!verify_ed25519(c.identity.signing_key, certificate_bytes(c.identity, c.mailbox, c.device_id), c.signature))
    return fail(errc::bad_signature);
  return c;
}

e2e::SenderCertificate sender_certificate::to_wire() const {
  e2e::SenderCertificate w;
  *w.mutable_identity() = identity.to_wire();
  w.set_mailbox_id(as_string(mailbox));
  w.set_device_id(device_id);
  w.set_signature(as_string(signature));
  return w;
}

result<std::vector<std::uint8_t>> seal(const identity_key_pair& sender, const sender_certificate& cert,
                                       const public_identity& recipient, content_type type, byte_view message,
                                       const random_source& random) {
  if (!(cert.identity == sender.public_keys())) return fail(errc::invalid_argument);
  e2e::SealedContent content;
  *content.mutable_sender() = cert.to_wire();
  content.set_type(static_cast<e2e::ContentType>(type));
  content.set_message(as_string(message));
  std::vector<std::uint8_t> plain(content.ByteSizeLong());
  content.SerializeToArray(plain.data(), static_cast<int>(plain.size()));
  auto padded = pad(plain);
  if (!padded) return std::unexpected(padded.error());

  auto e = x25519_key_pair::generate(random);
  auto shared_e = x25519(e, recipient.dh_key);
  if (!shared_e) return std::unexpected(shared_e.error());
  const auto k1 = derive_ephemeral(e.public_key(), recipient, *shared_e);
  const auto c_static = aead_seal(k1.key.view(), k1.nonce, static_ad(e.public_key(), recipient),
                                  sender.public_keys().dh_key);
  auto shared_s = x25519(sender.dh(), recipient.dh_key);
  if (!shared_s) return std::unexpected(shared_s.error());
  const auto k2 = derive_static(k1.chain, *shared_s);
  const auto c_content =
      aead_seal(k2.key.view(), k2.nonce, content_ad(e.public_key(), c_static, recipient), *padded);

  return byte_writer().u8(sealed_version).bytes(e.public_key()).bytes(c_static).bytes(c_content).take();
}

result<opened_envelope> open_sealed(const identity_key_pair& recipient, byte_view sealed) {
  if (sealed.empty()) return fail(errc::malformed_message);
  if (sealed[0] != sealed_version) return fail(errc::unsupported_version);
  if (sealed.size() < header_size + aead_tag_size) return fail(errc::malformed_message);
  x25519_public_key e_pub{};
  std::copy_n(sealed.begin() + 1, 32, e_pub.begin());
  const auto c_static = sealed.subspan(33, static_ct_size);
  const auto c_content = sealed.subspan(header_size);
  const auto& me = recipient.public_keys();

  auto shared_e = x25519(recipient.dh(), e_pub);
  if (!shared_e) return std::unexpected(shared_e.error());
  const auto k1 = derive_ephemeral(e_pub, me, *shared_e);
  auto sender_dh = aead_open(k1.key.view(), k1.nonce, static_ad(e_pub, me), c_static);
  if (!sender_dh) return std::unexpected(sender_dh.error());
  auto shared_s = x25519(recipient.dh(), *sender_dh);
  if (!shared_s) return std::unexpected(shared_s.error());
  const auto k2 = derive_static(k1.chain, *shared_s);
  auto padded = aead_open(k2.key.view(), k2.nonce, content_ad(e_pub, c_static, me), c_content);
  if (!padded) return std::unexpected(padded.error());
  auto plain = unpad(*padded);
  if (!plain) return std::unexpected(plain.error());

  e2e::SealedContent content;
  if (!content.ParseFromArray(plain->data(), static_cast<int>(plain->size()))) return fail(errc::malformed_message);
  auto cert = sender_certificate::from_wire(content.sender());
  if (!cert) return std::unexpected(cert.error());
  // The certificate must name the key that actually sealed the envelope.
  if (!equal_constant_time(cert->identity.dh_key, *sender_dh)) return fail(errc::identity_mismatch);

  opened_envelope out;
  out.sender = *cert;
  switch (content.type()) {
    case e2e::CONTENT_TYPE_PREKEY_MESSAGE: {
      out.type = content_type::prekey_message;
      auto header = parse_prekey_message(as_bytes(content.message()));
      if (!header) return std::unexpected(header.error());
      if (!(header->initiator == cert->identity)) return fail(errc::identity_mismatch);
      break;
    }
    case e2e::CONTENT_TYPE_RATCHET_MESSAGE: out.type = content_type::ratchet_message; break;
    case e2e::CONTENT_TYPE_SENDER_KEY_MESSAGE: out.type = content_type::sender_key_message; break;
    default: return fail(errc::malformed_message);
  }
  const auto& m = content.message();
  out.message.assign(m.begin(), m.end());
  return out;
}

}  // namespace haven::crypto
