#pragma once
// Identities and prekeys (docs/PROTOCOL.md, "Keys").
//
// A user's identity is an Ed25519 signing key plus an X25519 key for key
// agreement; the X25519 key is signed by the signing key:
//   dh_key_signature = Ed25519(signing key, "haven-identity-dh-v1" || dh_key)
// Signed prekeys and last-resort prekeys are X25519 keys signed with
//   Ed25519(signing key, "haven-prekey-v1" || kind (1 byte) || id (4 bytes BE) || public key)
// where kind is 1 (signed) or 3 (last resort). The relay checks the same bytes.

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/signing.hpp"
#include "haven/crypto/x25519.hpp"
#include "wire.pb.h"

namespace haven::crypto {

// Matches haven.wire.PrekeyKind.
enum class prekey_kind : std::uint8_t { none = 0, signed_prekey = 1, one_time = 2, last_resort = 3 };

// The signed bytes are built by identity_dh_message and prekey_message in
// haven/crypto/verify.hpp, shared with the relay.

// The public half of an identity. Values of this type built by from_wire or
// identity_key_pair have a verified signature and a non-low-order DH key.
struct public_identity {
  ed25519_public_key signing_key{};
  x25519_public_key dh_key{};
  ed25519_signature dh_key_signature{};

  // Parses and verifies. Errors: invalid_argument (field sizes),
  // bad_signature, weak_key (low-order DH key).
  [[nodiscard]] static result<public_identity> from_wire(const wire::IdentityKeys& keys);
  [[nodiscard]] wire::IdentityKeys to_wire() const;
  // signing_key || dh_key (64 bytes): how an identity is bound into
  // associated data, certificates and safety numbers.
  [[nodiscard]] std::array<std::uint8_t, 64> encoded() const noexcept;
  [[nodiscard]] bool operator==(const public_identity&) const = default;
};

class identity_key_pair {
 public:
  // Draws 32 bytes (Ed25519 seed) then 32 bytes (X25519 secret).
  [[nodiscard]] static identity_key_pair generate(const random_source& random);
  // Rebuilds an identity from its two stored secrets (e.g. from a vault).
  [[nodiscard]] static identity_key_pair from_secrets(std::span<const std::uint8_t, 32> signing_seed,
                                                      std::span<const std::uint8_t, 32> dh_secret);

  [[nodiscard]] const public_identity& public_keys() const noexcept { return public_; }
  [[nodiscard]] const signing_key& signing() const noexcept { return signing_; }
  [[nodiscard]] const x25519_key_pair& dh() const noexcept { return dh_; }

 private:
  identity_key_pair(signing_key s, x25519_key_pair d);
  signing_key signing_;
  x25519_key_pair dh_;
  public_identity public_;
};

// The public part of a signed (or last-resort) prekey, as uploaded.
struct signed_prekey_public {
  std::uint32_t id = 0;
  prekey_kind kind = prekey_kind::signed_prekey;
  x25519_public_key public_key{};
  ed25519_signature signature{};

  [[nodiscard]] wire::SignedPrekey to_wire() const;
  // Parses and verifies against `identity`'s signing key for `kind`.
  // Errors: invalid_argument, bad_signature, weak_key.
  [[nodiscard]] static result<signed_prekey_public> from_wire(const wire::SignedPrekey& p, prekey_kind kind,
                                                              const public_identity& identity);
};

// A signed or last-resort prekey with its secret; kept by its owner.
struct signed_prekey {
  std::uint32_t id = 0;
  prekey_kind kind = prekey_kind::signed_prekey;
  x25519_key_pair key;
  ed25519_signature signature{};

  [[nodiscard]] signed_prekey_public public_part() const;
};

// Draws 32 bytes. Precondition: kind is signed_prekey or last_resort
// (otherwise std::invalid_argument).
[[nodiscard]] signed_prekey generate_signed_prekey(const identity_key_pair& identity, std::uint32_t id,
                                                   prekey_kind kind, const random_source& random);

struct one_time_prekey_public {
  std::uint32_t id = 0;
  x25519_public_key public_key{};
  [[nodiscard]] wire::OneTimePrekey to_wire() const;
};

struct one_time_prekey {
  std::uint32_t id = 0;
  x25519_key_pair key;
  [[nodiscard]] one_time_prekey_public public_part() const { return {id, key.public_key()}; }
};

// `count` keys with ids first_id, first_id+1, ...; draws 32 bytes each.
[[nodiscard]] std::vector<one_time_prekey> generate_one_time_prekeys(std::uint32_t first_id, std::size_t count,
                                                                     const random_source& random);

// What an initiator needs to start a session with one device, verified.
struct prekey_bundle {
  public_identity identity;
  std::uint32_t device_id = 0;
  signed_prekey_public signed_prekey;
  std::optional<one_time_prekey_public> one_time;
  std::optional<signed_prekey_public> last_resort;
};

// Verifies one device's prekeys as the relay returns them
// (wire::PrekeyBundle.identity + one of its DevicePrekeys). Refuses a bad
// identity or prekey signature (bad_signature), a low-order key (weak_key),
// a missing signed prekey or wrong sizes (invalid_argument).
[[nodiscard]] result<prekey_bundle> verify_bundle(const wire::IdentityKeys& identity,
                                                  const wire::DevicePrekeys& device);

}  // namespace haven::crypto
