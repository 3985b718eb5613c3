#pragma once
// Sender keys for groups (docs/PROTOCOL.md, "Groups").
//
// Each member has, per group generation (distribution id), one sending
// chain: a chain key and an Ed25519 signing key. It hands the chain to every
// other member in a SenderKeyDistribution over their 1:1 sessions, then
// encrypts each group message once:
//   mk = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02)
//   key || nonce = HKDF(salt = none, ikm = mk, "haven-sender-key-message-keys-v1", 56)
//   ciphertext = AEAD(key, nonce, ad = distribution_id || chain_id (4 BE) ||
//                     iteration (4 BE) || signing public key, pad(plaintext))
//   signature = Ed25519(chain signing key, "haven-sender-key-v1" ||
//                       distribution_id || chain_id || iteration || ciphertext)
// Rotation (member removed, key too old): every remaining member creates a
// new group_sender (new chain id, chain key and signing key) and
// distributes it only to the remaining members, so a removed member's old
// receivers fail with unknown_sender_chain.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/session.hpp"
#include "haven/crypto/signing.hpp"

namespace haven::crypto {

inline constexpr std::size_t distribution_id_size = 16;
using distribution_id = std::array<std::uint8_t, distribution_id_size>;

// Which chain a group message came from, read before decrypting so the
// client can pick the receiver. Errors: malformed_message.
struct sender_key_message_info {
  distribution_id distribution{};
  std::uint32_t chain_id = 0;
  std::uint32_t iteration = 0;
};
[[nodiscard]] result<sender_key_message_info> peek_sender_key_message(byte_view message);

// Our own sending chain in one group.
class group_sender {
 public:
  // Draws 4 bytes (chain id), 32 (chain key), 32 (signing seed).
  [[nodiscard]] static group_sender create(const distribution_id& distribution, const random_source& random);
  [[nodiscard]] static result<group_sender> deserialize(byte_view bytes);

  // A serialized SenderKeyDistribution for the current iteration: send it
  // to each member inside a 1:1 ratchet message. Secret.
  [[nodiscard]] secret_bytes distribution_message() const;
  // A serialized SenderKeyMessage. Errors: too_large.
  [[nodiscard]] result<std::vector<std::uint8_t>> encrypt(byte_view plaintext);
  [[nodiscard]] secret_bytes serialize() const;

  [[nodiscard]] const distribution_id& distribution() const noexcept { return distribution_; }
  [[nodiscard]] std::uint32_t chain_id() const noexcept { return chain_id_; }
  [[nodiscard]] std::uint32_t iteration() const noexcept { return iteration_; }

 private:
  group_sender(const distribution_id& d, std::uint32_t chain_id, std::uint32_t iteration,
               const secret_array<32>& chain_key, signing_key key);
  distribution_id distribution_{};
  std::uint32_t chain_id_ = 0;
  std::uint32_t iteration_ = 0;
  secret_array<32> chain_key_;
  signing_key signing_;
};

// Another member's chain, as received in its distribution message.
class group_receiver {
 public:
  // Errors: malformed_message, invalid_argument.
  [[nodiscard]] static result<group_receiver> from_distribution(byte_view distribution_message,
                                                                ratchet_limits limits = {});
  [[nodiscard]] static result<group_receiver> deserialize(byte_view bytes, ratchet_limits limits = {});

  // Verifies the signature, then decrypts; on any error nothing changes.
  // Errors: malformed_message, unknown_sender_chain (another distribution
  // id or chain id: e.g. sent after a rotation we were not given),
  // bad_signature, duplicate_message, too_many_skipped, decryption_failed,
  // bad_padding.
  [[nodiscard]] result<std::vector<std::uint8_t>> decrypt(byte_view message);
  [[nodiscard]] secret_bytes serialize() const;

  [[nodiscard]] const distribution_id& distribution() const noexcept { return distribution_; }
  [[nodiscard]] std::uint32_t chain_id() const noexcept { return chain_id_; }
  [[nodiscard]] std::size_t skipped_key_count() const noexcept { return skipped_.size(); }

 private:
  group_receiver() = default;
  ratchet_limits limits_;
  distribution_id distribution_{};
  std::uint32_t chain_id_ = 0;
  std::uint32_t iteration_ = 0;  // of chain_key_
  secret_array<32> chain_key_;
  ed25519_public_key signing_public_{};
  std::map<std::uint32_t, secret_array<32>> skipped_;  // iteration -> message key
};

}  // namespace haven::crypto
