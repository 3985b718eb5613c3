// Writes the seed corpus of every fuzz target: real frames, envelopes,
// messages, vaults and configs made with the keys of fixtures.hpp, so the
// targets accept them as far as the keys allow. Deterministic: running it
// again rewrites the same files.
//
//   fuzz_make_corpus tests/fuzz/corpus deploy/havend.toml

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "client.pb.h"
#include "e2e.pb.h"
#include "fixtures.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/padding.hpp"
#include "wire.pb.h"

namespace {

using namespace haven;
using fuzz::text;

std::filesystem::path root;

void write(const std::string& target, const std::string& name, std::string_view bytes) {
  const auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A mode byte, then the payload (the crypto targets' input format).
void write(const std::string& target, const std::string& name, std::uint8_t mode, std::string_view payload) {
  write(target, name, std::string(1, static_cast<char>(mode)) + std::string(payload));
}

std::string str(crypto::byte_view b) { return text(b); }

// ---------------------------------------------------------------- relay

const std::string mailbox(fuzz::relay_mailbox_placeholder);

wire::ClientFrame frame(std::uint64_t id) {
  wire::ClientFrame f;
  f.set_request_id(id);
  return f;
}

wire::SignedPrekey signed_prekey(std::uint32_t id, wire::PrekeyKind kind, std::uint8_t secret) {
  const auto key = crypto::x25519_key_pair::from_secret(std::array<std::uint8_t, 32>{secret});
  wire::SignedPrekey p;
  p.set_id(id);
  p.set_public_key(str(key.public_key()));
  p.set_signature(str(fuzz::relay_identity().sign(fuzz::bytes(
      crypto::prekey_message(static_cast<std::uint8_t>(kind), id, key.public_key())))));
  return p;
}

wire::ClientFrame send_frame(std::uint64_t id, std::vector<std::uint32_t> devices, std::string access_key) {
  auto f = frame(id);
  auto* s = f.mutable_send();
  s->set_envelope_id(std::string(16, '\x71'));
  s->set_mailbox_id(mailbox);
  s->set_access_key(std::move(access_key));
  for (auto d : devices) {
    auto* m = s->add_messages();
    m->set_device_id(d);
    m->set_sealed(std::string(353, '\x72'));  // the size of a small sealed envelope
  }
  return f;
}

void relay(const std::string& name, std::uint8_t flags, const std::vector<wire::ClientFrame>& frames,
           std::vector<std::string> raw = {}) {
  std::vector<std::string> all;
  for (const auto& f : frames) all.push_back(f.SerializeAsString());
  for (auto& r : raw) all.push_back(std::move(r));
  write("relay", name, fuzz::join_frames(flags, all));
}

void relay_corpus() {
  constexpr std::uint8_t anonymous = 0, logged_in = 1, replaced = 2;
  auto ping = frame(1);
  ping.mutable_ping();
  relay("ping", logged_in, {ping});
  relay("ping-anonymous", anonymous, {ping});

  // Register and auth that cannot succeed (a signature over another
  // nonce), and both after log-in.
  const auto device = crypto::signing_key::from_seed(std::array<std::uint8_t, 32>{0x81});
  const auto identity = crypto::signing_key::from_seed(std::array<std::uint8_t, 32>{0x82});
  const auto dh = crypto::x25519_key_pair::from_secret(std::array<std::uint8_t, 32>{0x83});
  auto reg = frame(2);
  auto* r = reg.mutable_register_();
  r->set_invite_token("7K2M-9QXD-ABCD-EFGH-JKMN-PQRS");
  r->mutable_identity()->set_signing_key(str(identity.public_key()));
  r->mutable_identity()->set_dh_key(str(dh.public_key()));
  r->mutable_identity()->set_dh_key_signature(
      str(identity.sign(fuzz::bytes(crypto::identity_dh_message(dh.public_key())))));
  r->set_device_signing_key(str(device.public_key()));
  r->set_access_key(std::string(32, '\x84'));
  r->set_signature(str(device.sign(fuzz::bytes(crypto::register_message(
      std::array<std::uint8_t, 16>{}, std::array<std::uint8_t, 32>{}, r->invite_token())))));
  auto auth = frame(3);
  auth.mutable_auth()->set_mailbox_id(mailbox);
  auth.mutable_auth()->set_device_id(1);
  auth.mutable_auth()->set_signature(std::string(64, '\x85'));
  relay("register", anonymous, {reg, ping});
  relay("auth", anonymous, {auth, ping});
  relay("already-logged-in", logged_in, {auth, reg});

  // Prekeys signed by the registered identity, then fetched.
  auto upload = frame(4);
  auto* u = upload.mutable_upload_prekeys();
  *u->mutable_signed_prekey() = signed_prekey(1, wire::PREKEY_KIND_SIGNED, 0x91);
  *u->mutable_last_resort() = signed_prekey(2, wire::PREKEY_KIND_LAST_RESORT, 0x92);
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto* k = u->add_one_time();
    k->set_id(10 + i);
    k->set_public_key(str(crypto::x25519_key_pair::from_secret(std::array<std::uint8_t, 32>{
        static_cast<std::uint8_t>(0xa0 + i)}).public_key()));
  }
  auto fetch = frame(5);
  fetch.mutable_fetch_prekeys()->set_mailbox_id(mailbox);
  fetch.mutable_fetch_prekeys()->set_access_key(fuzz::relay_access_key);
  relay("prekeys", logged_in, {upload, fetch, fetch});
  auto bad_fetch = fetch;
  bad_fetch.mutable_fetch_prekeys()->set_access_key(std::string(32, '\0'));
  relay("fetch-denied", logged_in, {bad_fetch});

  // Sends to ourselves (pushed back, then acked), to an unknown device,
  // with a wrong access key.
  auto ack = frame(7);
  auto* delivered = ack.mutable_ack()->add_envelopes();
  delivered->set_seq(1);
  delivered->set_envelope_id(std::string(16, '\x71'));
  relay("send-ack", logged_in, {send_frame(6, {1}, fuzz::relay_access_key), ack});
  relay("send-replaced", logged_in | replaced, {send_frame(6, {1}, fuzz::relay_access_key), ping});
  relay("send-unknown-device", logged_in, {send_frame(8, {1, 2}, fuzz::relay_access_key)});
  relay("send-denied", logged_in, {send_frame(9, {1}, std::string(32, '\x01'))});

  // A group: created, our own mailbox added again (a role change), a send
  // (no other member, so nothing is delivered), a send to an unknown
  // group, and leaving.
  const std::string group_id(16, '\x61');
  auto create = frame(14);
  create.mutable_create_group()->set_group_id(group_id);
  auto add = frame(15);
  add.mutable_update_group()->set_group_id(group_id);
  auto* member = add.mutable_update_group()->add_add();
  member->set_mailbox_id(mailbox);
  member->set_access_key(fuzz::relay_access_key);
  member->set_facilitator(true);
  auto group_send = frame(16);
  group_send.mutable_group_send()->set_envelope_id(std::string(16, '\x62'));
  group_send.mutable_group_send()->set_group_id(group_id);
  group_send.mutable_group_send()->set_sealed(std::string(353, '\x63'));
  auto stranger_send = group_send;
  stranger_send.set_request_id(17);
  stranger_send.mutable_group_send()->set_group_id(std::string(16, '\x64'));
  auto leave = frame(18);
  leave.mutable_update_group()->set_group_id(group_id);
  leave.mutable_update_group()->add_remove(mailbox);
  relay("group", logged_in, {create, add, group_send, stranger_send, leave});

  // The roaming vault: store, header and open (right and wrong key).
  const std::string vault_id(16, '\x55');
  const std::string k_auth(32, '\x56');
  auto store = frame(10);
  auto* v = store.mutable_vault_store();
  v->set_vault_id(vault_id);
  v->set_header(std::string(40, '\x57'));
  const auto verifier = crypto::hash256(fuzz::bytes(k_auth));
  v->set_auth_verifier(str(verifier));
  v->set_sealed(std::string(300, '\x58'));
  auto header = frame(11);
  header.mutable_vault_header()->set_vault_id(vault_id);
  auto open = frame(12);
  open.mutable_vault_open()->set_vault_id(vault_id);
  open.mutable_vault_open()->set_auth_key(k_auth);
  auto wrong = open;
  wrong.set_request_id(13);
  wrong.mutable_vault_open()->set_auth_key(std::string(32, '\0'));
  relay("vault", logged_in, {store, header, open, wrong});
  relay("vault-anonymous", anonymous, {header, open});

  // Frames the decoder refuses: no id, no body, not a ClientFrame.
  relay("malformed", logged_in, {frame(0), frame(14)}, {"", "\xff\xff\xff"});
  relay("three-malformed", logged_in, {}, {"\xff", "\xff", "\xff", ping.SerializeAsString()});
}

// ---------------------------------------------------------------- crypto

std::string sealed_content(const crypto::sender_certificate& cert, e2e::ContentType type, std::string message) {
  e2e::SealedContent c;
  *c.mutable_sender() = cert.to_wire();
  c.set_type(type);
  c.set_message(std::move(message));
  return c.SerializeAsString();
}

void crypto_corpus() {
  auto f = fuzz::make_ratchet_fixture();
  const auto random = fuzz::fixed_random(0x12);

  // Ratchet: Alice's messages for Bob (the 2nd skipped), Bob's for Alice.
  auto alice = fuzz::copy_of(f.alice_session);
  auto bob = fuzz::copy_of(f.bob_session);
  std::vector<std::vector<std::uint8_t>> to_bob, to_alice;
  for (int i = 0; i < 3; ++i) to_bob.push_back(alice.encrypt(fuzz::bytes("to bob")).value().bytes);
  for (int i = 0; i < 2; ++i) to_alice.push_back(bob.encrypt(fuzz::bytes("to alice")).value().bytes);
  write("ratchet", "to-bob-0", 0, str(to_bob[0]));
  write("ratchet", "to-bob-2", 0, str(to_bob[2]));
  write("ratchet", "to-alice-0", 1, str(to_alice[0]));
  write("ratchet", "to-alice-1", 1, str(to_alice[1]));
  write("ratchet", "prekey-to-bob", 2, str(f.first_prekey_message));
  write("ratchet", "state-alice", 3, str(f.alice_session.serialize().view()));
  write("ratchet", "state-bob", 3, str(f.bob_session.serialize().view()));

  // Sender keys: messages at iterations 0 and 3, the distribution, a state.
  auto sender = fuzz::make_group_sender();
  std::vector<std::vector<std::uint8_t>> group;
  for (int i = 0; i < 4; ++i) group.push_back(sender.encrypt(fuzz::bytes("to the group")).value());
  write("sender_key", "message-0", 0, str(group[0]));
  write("sender_key", "message-3", 0, str(group[3]));
  write("sender_key", "resigned-3", 1, str(group[3]));
  const auto distribution = fuzz::make_group_sender().distribution_message();
  write("sender_key", "distribution", 2, str(distribution.view()));
  write("sender_key", "receiver-state", 3,
        str(crypto::group_receiver::from_distribution(distribution.view()).value().serialize().view()));

  // Sealed sender: whole envelopes from Alice to Bob, and their contents.
  const auto cert = fuzz::sealing_certificate(f.alice);
  const auto bob_keys = f.bob.public_keys();
  const auto seal = [&](crypto::content_type type, crypto::byte_view m) {
    return str(crypto::seal(f.alice, cert, bob_keys, type, m, random).value());
  };
  write("sealed_sender", "ratchet", 0, seal(crypto::content_type::ratchet_message, to_bob[0]));
  write("sealed_sender", "prekey", 0, seal(crypto::content_type::prekey_message, f.first_prekey_message));
  write("sealed_sender", "sender-key", 0, seal(crypto::content_type::sender_key_message, group[0]));
  write("sealed_sender", "content-ratchet", 1, sealed_content(cert, e2e::CONTENT_TYPE_RATCHET_MESSAGE, str(to_bob[0])));
  const auto prekey_content = sealed_content(cert, e2e::CONTENT_TYPE_PREKEY_MESSAGE, str(f.first_prekey_message));
  write("sealed_sender", "content-prekey", 1, prekey_content);
  write("sealed_sender", "content-unknown-type", 1, sealed_content(cert, e2e::CONTENT_TYPE_UNSPECIFIED, "x"));
  write("sealed_sender", "content-padded", 2, str(crypto::pad(fuzz::bytes(prekey_content)).value()));

  // Vaults: a real one, and a header at the upper limits.
  const auto keys = fuzz::make_vault_keys();
  write("vault", "vault", 0, str(crypto::seal_vault(keys, fuzz::bytes("profile"), random).value()));
  e2e::SealedVault heavy;
  heavy.set_version(1);
  heavy.set_algorithm(crypto::vault_algorithm_argon2id13);
  heavy.set_opslimit(crypto::vault_max_opslimit);
  heavy.set_memlimit(crypto::vault_max_memlimit);
  heavy.set_salt(std::string(16, '\x01'));
  heavy.set_nonce(std::string(24, '\x02'));
  heavy.set_ciphertext(std::string(272, '\x03'));
  write("vault", "upper-limits", 0, heavy.SerializeAsString());
  client::Profile profile;
  profile.set_name("fuzz");
  profile.set_mailbox_id(std::string(16, '\x11'));
  write("vault", "contents", 1, profile.SerializeAsString());

  // Contact codes: version || mailbox || identity || access key || checksum.
  const auto& id = f.alice.public_keys();
  std::string body(1, '\x01');
  body += std::string(16, '\x33') + str(id.signing_key) + str(id.dh_key) + str(id.dh_key_signature) +
          std::string(32, '\x34');
  const auto checksum = crypto::hash256(fuzz::bytes(body));
  const auto code = crypto::to_base64url(fuzz::bytes(body + std::string(checksum.begin(), checksum.begin() + 4)));
  write("contact_code", "code", 0, code);
  write("contact_code", "code-wrapped", 0, code.substr(0, 100) + "\n  " + code.substr(100));
  write("contact_code", "body", 1, body);
}

// ---------------------------------------------------------------- text

void text_corpus(const std::filesystem::path& example_config) {
  std::ifstream in(example_config, std::ios::binary);
  write("config", "havend.toml", std::string(std::istreambuf_iterator<char>(in), {}));
  write("config", "empty", "");
  write("config", "port", "[server]\nport = 0\nthreads = 4\n");
  write("config", "rates", "[limits]\nsends_per_mailbox = { per_second = 0.5, burst = 10 }\n");
  write("config", "store-log", "[store]\nenvelope_ttl_days = 7\n[log]\nlevel = \"debug\"\naddresses = true\n");
  write("config", "unknown-section", "[metrics]\nport = 9100\n");
  write("config", "tls", "[tls]\ncert_file = \"/etc/haven/cert.pem\"\nkey_file = \"/etc/haven/key.pem\"\n");
  write("config", "wrong-type", "[limits]\nmax_frame_bytes = \"big\"\n");

  write("invite_token", "grouped", "7K2M-9QXD-ABCD-EFGH-JKMN-PQRS");
  write("invite_token", "typed", "7k2m 9qxd abcd efgh jkmn pqrs");
  write("invite_token", "confusable", "IL0O-9QXD-ABCD-EFGH-JKMN-PQRS");
  write("invite_token", "short", "7K2M-9QXD");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fuzz_make_corpus CORPUS_DIR deploy/havend.toml\n";
    return 2;
  }
  root = argv[1];
  relay_corpus();
  crypto_corpus();
  text_corpus(argv[2]);
  std::cout << "corpus written to " << root.string() << "\n";
  return 0;
}
