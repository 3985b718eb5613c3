#pragma once
// X3DH key agreement and the Double Ratchet (docs/PROTOCOL.md, "X3DH" and
// "Double Ratchet").
//
// A session is one side of a 1:1 conversation between two devices. It is a
// value: move it, serialise it (secret!) into the vault, restore it.
//
//   initiator                               responder
//   s = session::initiate(me, bundle, rnd)
//   m = s.encrypt(text)   ---- prekey ---->  p = parse_prekey_message(m.bytes)
//                                            r = session::respond(me, spk, otk?, p)
//                                            text = r.decrypt(m, rnd)
//                         <--- ratchet ----  r.encrypt(reply)
//
// Decryption authenticates before it changes anything: a refused message
// (tampered, replayed, from another session) leaves the session exactly as
// it was, so callers may drop it and carry on. Persist the session after
// every successful encrypt and decrypt, before acknowledging the envelope.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/x25519.hpp"

namespace haven::crypto {

// Bounds on the keys a session keeps for messages that have not arrived yet.
struct ratchet_limits {
  // A message that would need more than this many message keys derived and
  // stored in one chain is refused (too_many_skipped).
  std::uint32_t max_skip = 2000;
  // At most this many skipped keys are stored; beyond it the oldest are
  // dropped, and a message whose key was dropped is refused
  // (duplicate_message).
  std::size_t max_stored = 2000;
};

// The session's associated data: initiator identity (signing || dh) ||
// responder identity (signing || dh), 128 bytes.
inline constexpr std::size_t session_ad_size = 128;

enum class message_type : std::uint8_t {
  prekey = 1,   // serialized e2e.PrekeyMessage (CONTENT_TYPE_PREKEY_MESSAGE)
  ratchet = 2,  // serialized e2e.RatchetMessage (CONTENT_TYPE_RATCHET_MESSAGE)
};

struct encrypted_message {
  message_type type = message_type::ratchet;
  std::vector<std::uint8_t> bytes;
};

// The X3DH part of a prekey message, for the responder to look up its keys.
struct prekey_header {
  public_identity initiator;
  x25519_public_key base_key{};
  std::uint32_t signed_prekey_id = 0;
  prekey_kind one_time_kind = prekey_kind::none;  // none, one_time or last_resort
  std::uint32_t one_time_id = 0;
};

// Parses a PrekeyMessage and verifies the initiator's identity signature.
// Errors: malformed_message, invalid_argument, bad_signature, weak_key.
[[nodiscard]] result<prekey_header> parse_prekey_message(byte_view bytes);

class session {
 public:
  // X3DH as initiator with a verified bundle (see verify_bundle). Uses the
  // bundle's one-time prekey if it has one, else its last-resort prekey,
  // else the signed prekey alone. Draws 32 bytes (base key) then 32 bytes
  // (first ratchet key). Errors: weak_key.
  [[nodiscard]] static result<session> initiate(const identity_key_pair& self, const prekey_bundle& bundle,
                                                const random_source& random, ratchet_limits limits = {});

  // X3DH as responder for `message`. `signed_prekey` must be the one named
  // by message.signed_prekey_id; `one_time_key` the one-time or last-resort
  // key it names (nullptr when it names none). Draws nothing. The caller
  // deletes a one-time prekey only after the first decrypt succeeds.
  // Errors: invalid_argument (wrong signed prekey id), missing_prekey,
  // weak_key.
  [[nodiscard]] static result<session> respond(const identity_key_pair& self, const signed_prekey& signed_prekey,
                                               const x25519_key_pair* one_time_key, const prekey_header& message,
                                               ratchet_limits limits = {});

  // Restores a serialised session. Errors: malformed_message,
  // unsupported_version, invalid_argument.
  [[nodiscard]] static result<session> deserialize(byte_view bytes, ratchet_limits limits = {});

  session(session&&) noexcept;
  session& operator=(session&&) noexcept;
  ~session();

  // Encrypts one message: a prekey message until this initiator has
  // received a reply, then ratchet messages. Draws no randomness.
  // Errors: no_sending_chain (a responder that has not received yet).
  [[nodiscard]] result<encrypted_message> encrypt(byte_view plaintext);

  // Decrypts one message. On a DH ratchet step it draws 32 bytes (our next
  // ratchet key), after the message has authenticated. Errors:
  // malformed_message, decryption_failed, duplicate_message,
  // too_many_skipped, session_mismatch (prekey message of another session),
  // weak_key. On any error the session is unchanged.
  [[nodiscard]] result<std::vector<std::uint8_t>> decrypt(const encrypted_message& message,
                                                          const random_source& random);

  // Serialises the whole state (SessionState). Contains secret keys.
  [[nodiscard]] secret_bytes serialize() const;

  [[nodiscard]] const public_identity& remote_identity() const noexcept;
  [[nodiscard]] const public_identity& local_identity() const noexcept;
  // The X3DH base key: a prekey message with this base key belongs here.
  [[nodiscard]] const x25519_public_key& base_key() const noexcept;
  [[nodiscard]] std::size_t skipped_key_count() const noexcept;
  // True while the initiator still sends prekey messages.
  [[nodiscard]] bool awaiting_reply() const noexcept;

  struct state;  // private, in session.cpp

 private:
  explicit session(std::unique_ptr<state> s) noexcept;
  std::unique_ptr<state> state_;
};

}  // namespace haven::crypto
