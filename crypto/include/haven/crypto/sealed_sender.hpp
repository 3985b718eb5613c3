#pragma once
// Sealed sender (docs/PROTOCOL.md, "Sealed sender"). The relay sees only the
// recipient mailbox and a padded size; the sender's certificate and the
// message are sealed to the recipient's identity DH key.
//
// sealed = 0x01 || e_pub (32) || c_static (48) || c_content
//   e: fresh X25519 key; k1 || n1 || ck = HKDF(salt = e_pub || R.dh,
//       ikm = DH(e, R.dh), "haven-seal-ephemeral-v1", 88)
//   c_static  = AEAD(k1, n1, ad = 0x01 || e_pub || R.signing || R.dh, S.dh)
//   k2 || n2  = HKDF(salt = ck, ikm = DH(S.dh, R.dh), "haven-seal-static-v1", 56)
//   c_content = AEAD(k2, n2, ad = 0x01 || e_pub || c_static || R.signing || R.dh,
//                    pad(SealedContent))
// Only the holder of S's identity DH secret can produce c_content for a
// certificate naming S, and only R can open it.

#include <array>
#include <cstdint>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/random.hpp"

namespace haven::e2e {
class SenderCertificate;
}

namespace haven::crypto {

inline constexpr std::uint8_t sealed_version = 1;
inline constexpr std::size_t mailbox_id_size = 16;
using mailbox_id = std::array<std::uint8_t, mailbox_id_size>;

// Who sent an envelope: identity, reply address, signed by the identity.
//   signature = Ed25519(identity signing key, "haven-sender-cert-v1" ||
//     signing_key || dh_key || mailbox_id (16) || device_id (4 BE))
struct sender_certificate {
  public_identity identity;
  mailbox_id mailbox{};
  std::uint32_t device_id = 0;
  ed25519_signature signature{};

  [[nodiscard]] static sender_certificate issue(const identity_key_pair& identity, const mailbox_id& mailbox,
                                                std::uint32_t device_id);
  // Parses and verifies the identity and the certificate signature.
  // Errors: invalid_argument, bad_signature, weak_key.
  [[nodiscard]] static result<sender_certificate> from_wire(const e2e::SenderCertificate& cert);
  [[nodiscard]] e2e::SenderCertificate to_wire() const;
  [[nodiscard]] bool operator==(const sender_certificate&) const = default;
};

// Matches e2e.ContentType.
enum class content_type : std::uint8_t { prekey_message = 1, ratchet_message = 2, sender_key_message = 3 };

// Seals `message` of `type` from `sender` (whose certificate is `cert`) to
// `recipient`. Draws 32 bytes (the ephemeral key). Errors: invalid_argument
// (cert is not `sender`'s), too_large (over the padding limit), weak_key.
[[nodiscard]] result<std::vector<std::uint8_t>> seal(const identity_key_pair& sender,
                                                     const sender_certificate& cert,
                                                     const public_identity& recipient, content_type type,
                                                     byte_view message, const random_source& random);

struct opened_envelope {
  sender_certificate sender;  // verified, and bound to the sealing key
  content_type type = content_type::ratchet_message;
  std::vector<std::uint8_t> message;
};

// Opens a sealed envelope addressed to `recipient`. For a prekey message it
// also checks that the X3DH initiator is the certified sender. The caller
// then decrypts `message` with the session of sender.identity (and should
// check sender.mailbox against its contact). Errors: unsupported_version,
// malformed_message, decryption_failed (not for us, forged or tampered),
// identity_mismatch (certificate of someone other than the sealer),
// bad_signature, bad_padding, weak_key.
[[nodiscard]] result<opened_envelope> open_sealed(const identity_key_pair& recipient, byte_view sealed);

}  // namespace haven::crypto
