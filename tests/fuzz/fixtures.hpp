#pragma once
// Fixed keys and states shared by the fuzz targets and make_corpus, so the
// seed corpus (real envelopes, ratchet and group messages, relay frames)
// matches what each target sets up at start-up. Everything here comes from
// deterministic_random: never use these keys outside tests.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "haven/crypto/identity.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "haven/crypto/sender_keys.hpp"
#include "haven/crypto/session.hpp"
#include "haven/crypto/signing.hpp"
#include "haven/crypto/vault.hpp"

namespace haven::fuzz {

inline crypto::random_source fixed_random(std::uint8_t tag) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(tag);
  return crypto::deterministic_random(seed);
}

inline std::span<const std::uint8_t> bytes(std::string_view s) { return crypto::bytes_of(s); }
inline std::string text(std::span<const std::uint8_t> b) { return {b.begin(), b.end()}; }

// ---- 1:1 sessions: Alice initiated with Bob's bundle, one message each way,
// so both hold sending and receiving chains.
struct ratchet_fixture {
  crypto::identity_key_pair alice;
  crypto::identity_key_pair bob;
  crypto::session alice_session;
  crypto::session bob_session;
  std::vector<std::uint8_t> first_prekey_message;  // Alice's first message to Bob
};

inline ratchet_fixture make_ratchet_fixture() {
  const auto random = fixed_random(0x10);
  auto alice = crypto::identity_key_pair::generate(random);
  auto bob = crypto::identity_key_pair::generate(random);
  auto spk = crypto::generate_signed_prekey(bob, 1, crypto::prekey_kind::signed_prekey, random);
  auto otks = crypto::generate_one_time_prekeys(1, 1, random);
  const crypto::prekey_bundle bundle{bob.public_keys(), 1, spk.public_part(), otks[0].public_part(), {}};
  auto a = crypto::session::initiate(alice, bundle, random).value();
  auto m1 = a.encrypt(bytes("hello bob")).value();
  auto header = crypto::parse_prekey_message(m1.bytes).value();
  auto b = crypto::session::respond(bob, spk, &otks[0].key, header).value();
  (void)b.decrypt(m1, random).value();
  auto m2 = b.encrypt(bytes("hello alice")).value();
  (void)a.decrypt(m2, random).value();
  return {std::move(alice), std::move(bob), std::move(a), std::move(b), std::move(m1.bytes)};
}

inline crypto::session copy_of(const crypto::session& s) {
  return crypto::session::deserialize(s.serialize().view()).value();
}

// ---- sealed sender: Alice (mailbox 0x33.., device 1) seals to Bob.
inline crypto::sender_certificate sealing_certificate(const crypto::identity_key_pair& sender) {
  crypto::mailbox_id mailbox{};
  mailbox.fill(0x33);
  return crypto::sender_certificate::issue(sender, mailbox, 1);
}

// ---- sender keys: one group sender and its chain signing key.
inline crypto::distribution_id group_distribution() {
  crypto::distribution_id d{};
  d.fill(0x44);
  return d;
}

inline crypto::group_sender make_group_sender() {
  return crypto::group_sender::create(group_distribution(), fixed_random(0x40));
}

// The sender's chain signing key, drawn as group_sender::create draws it
// (4 bytes chain id, 32 chain key, 32 signing seed).
inline crypto::signing_key group_signing_key() {
  const auto random = fixed_random(0x40);
  std::array<std::uint8_t, 4> id{};
  std::array<std::uint8_t, 32> chain{};
  random(id);
  random(chain);
  return crypto::signing_key::generate(random);
}

// ---- vault: keys derived once at the lowest accepted limits.
inline constexpr std::string_view vault_passphrase = "correct horse battery staple";

inline crypto::vault_keys make_vault_keys() {
  return crypto::derive_vault_keys(vault_passphrase, crypto::new_vault_header(fixed_random(0x50))).value();
}

// ---- relay: one account registered at start-up with these keys.
inline crypto::signing_key relay_identity() {
  return crypto::signing_key::from_seed(std::array<std::uint8_t, 32>{0x61});
}
inline crypto::signing_key relay_device() {
  return crypto::signing_key::from_seed(std::array<std::uint8_t, 32>{0x62});
}
inline crypto::x25519_key_pair relay_dh() {
  return crypto::x25519_key_pair::from_secret(std::array<std::uint8_t, 32>{0x63});
}
inline const std::string relay_access_key(32, '\x64');
// Inputs name the registered account's mailbox (random per run) by these
// 16 bytes; the relay target replaces them with the real id.
inline constexpr std::string_view relay_mailbox_placeholder = "HAVEN-FUZZ-MBOX!";

// Relay inputs: a flag byte (bit 0: log in before sending), then frames,
// each a 2-byte big-endian length and that many bytes (the last may be
// short).
inline std::vector<std::string_view> split_frames(std::string_view in) {
  std::vector<std::string_view> frames;
  while (in.size() >= 2) {
    const std::size_t n = (std::size_t{static_cast<std::uint8_t>(in[0])} << 8) | static_cast<std::uint8_t>(in[1]);
    in.remove_prefix(2);
    frames.push_back(in.substr(0, n));
    in.remove_prefix(std::min(n, in.size()));
  }
  return frames;
}

inline std::string join_frames(std::uint8_t flags, const std::vector<std::string>& frames) {
  std::string out(1, static_cast<char>(flags));
  for (const auto& f : frames) {
    out += static_cast<char>(f.size() >> 8);
    out += static_cast<char>(f.size() & 0xff);
    out += f;
  }
  return out;
}

}  // namespace haven::fuzz
