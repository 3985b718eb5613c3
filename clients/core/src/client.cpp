#include "haven/client/client.hpp"

#include <algorithm>
#include <span>
#include <thread>

#include "contact_code.hpp"
#include "haven/client/relay_connection.hpp"
#include "haven/crypto/identity.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/safety_number.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "haven/crypto/session.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::client {

namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t k_signed_prekey_id = 1;
constexpr std::uint32_t k_last_resort_id = 2;
constexpr std::uint32_t k_first_one_time_id = 100;
constexpr std::size_t k_one_time_batch = 100;
constexpr std::size_t k_one_time_low = 20;      // replenish below this many on the server
constexpr std::size_t k_one_time_kept = 1'000;  // local secrets kept (newest)
constexpr std::size_t k_seen_kept = 5'000;      // envelope ids remembered for dedupe

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string as_string(crypto::byte_view b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

template <std::size_t N>
std::span<const std::uint8_t, N> fixed(const std::string& s) {
  return std::span<const std::uint8_t, N>(reinterpret_cast<const std::uint8_t*>(s.data()), N);
}

std::string random_string(std::size_t n) {
  std::string s(n, '\0');
  crypto::random_fill({reinterpret_cast<std::uint8_t*>(s.data()), n});
  return s;
}

std::error_code crypto_failure() { return make_error_code(errc::decrypt_failed); }

}  // namespace

struct client::impl {
  static crypto::identity_key_pair identity(const Profile& p) {
    return crypto::identity_key_pair::from_secrets(fixed<32>(p.identity_signing_seed()),
                                                   fixed<32>(p.identity_dh_secret()));
  }

  static crypto::signed_prekey signed_key(const KeyPairSecret& k, crypto::prekey_kind kind) {
    crypto::signed_prekey out;
    out.id = k.id();
    out.kind = kind;
    out.key = crypto::x25519_key_pair::from_secret(fixed<32>(k.secret()));
    std::copy_n(k.signature().begin(), out.signature.size(), out.signature.begin());
    return out;
  }

  static KeyPairSecret to_secret(const crypto::signed_prekey& k) {
    KeyPairSecret s;
    s.set_id(k.id);
    s.set_secret(as_string(k.key.secret()));
    s.set_signature(as_string(k.signature));
    return s;
  }

  static Contact* find(Profile& p, std::string_view name) {
    for (auto& c : *p.mutable_contacts())
      if (c.name() == name) return &c;
    return nullptr;
  }

  static result<std::unique_ptr<relay_connection>> connect_and_login(
      const Profile& p, const connection_options& options) {
    auto conn = relay_connection::connect(p.server_url(), options);
    if (!conn) return std::unexpected(conn.error());
    const auto& challenge = (*conn)->challenge();
    const auto device = crypto::signing_key::from_seed(fixed<32>(p.device_signing_seed()));
    wire::ClientFrame f;
    f.mutable_auth()->set_mailbox_id(p.mailbox_id());
    f.mutable_auth()->set_device_id(p.device_id());
    f.mutable_auth()->set_signature(as_string(device.sign(crypto::bytes_of(crypto::auth_message(
        crypto::bytes_of(challenge.server_id()), crypto::bytes_of(challenge.nonce()))))));
    auto reply = (*conn)->request(f);
    if (!reply) return std::unexpected(reply.error());
    if (!reply->has_authenticated()) return std::unexpected(make_error_code(errc::protocol_error));
    return std::move(*conn);
  }

  // Keeps enough one-time prekeys on the server. New secrets are saved
  // before their public halves are uploaded, so none can be lost.
  static result<void> replenish_prekeys(profile_store& store, relay_connection& conn) {
    wire::ClientFrame query;
    query.mutable_upload_prekeys();
    auto held = conn.request(query);
    if (!held) return std::unexpected(held.error());
    if (held->prekeys_uploaded().one_time_stored() >= k_one_time_low) return {};
    auto& p = store.profile();
    const auto first = std::max(p.next_prekey_id(), k_first_one_time_id);
    auto keys = crypto::generate_one_time_prekeys(first, k_one_time_batch, crypto::system_random());
    wire::ClientFrame upload;
    for (const auto& k : keys) {
      auto* s = p.add_one_time();
      s->set_id(k.id);
      s->set_secret(as_string(k.key.secret()));
      *upload.mutable_upload_prekeys()->add_one_time() = k.public_part().to_wire();
    }
    p.set_next_prekey_id(first + static_cast<std::uint32_t>(k_one_time_batch));
    if (static_cast<std::size_t>(p.one_time_size()) > k_one_time_kept)
      p.mutable_one_time()->DeleteSubrange(
          0, p.one_time_size() - static_cast<int>(k_one_time_kept));
    if (auto saved = store.save(); !saved) return saved;
    auto up = conn.request(upload);
    if (!up) return std::unexpected(up.error());
    return {};
  }

  static bool seen(const Profile& p, const std::string& id) {
    return std::ranges::find(p.seen_envelopes(), id) != p.seen_envelopes().end();
  }

  static void remember(Profile& p, const std::string& id) {
    p.add_seen_envelopes(id);
    if (static_cast<std::size_t>(p.seen_envelopes_size()) > k_seen_kept)
      p.mutable_seen_envelopes()->DeleteSubrange(0, 1);
  }

  // Opens, decrypts and files one envelope in the profile (not yet saved).
  // Returns the message, or nothing for a duplicate or an envelope that
  // cannot be read (both are acked: keeping them would not help).
  static std::optional<message> receive(Profile& p, const wire::Envelope& e) {
    if (seen(p, e.envelope_id())) return std::nullopt;
    remember(p, e.envelope_id());
    const auto me = identity(p);
    auto opened = crypto::open_sealed(me, crypto::bytes_of(e.sealed()));
    if (!opened) return std::nullopt;
    const auto& sender = opened->sender;
    const auto sender_key = as_string(sender.identity.signing_key);

    Contact* contact = nullptr;
    for (auto& c : *p.mutable_contacts())
      if (c.identity_signing_key() == sender_key) contact = &c;
    if (contact == nullptr) {
      // Someone holding our code who is not in our contacts yet.
      contact = p.add_contacts();
      contact->set_name("unknown-" + crypto::fingerprint_digits(sender.identity).substr(0, 5));
      contact->set_identity_signing_key(sender_key);
    }
    *contact->mutable_identity() = sender.identity.to_wire();
    contact->set_mailbox_id(as_string(sender.mailbox));
    contact->set_device_id(sender.device_id);

    auto plain = decrypt(p, *contact, me, *opened);
    if (!plain) return std::nullopt;
    ChatMessage chat;
    if (!chat.ParseFromArray(plain->data(), static_cast<int>(plain->size()))) return std::nullopt;
    auto* h = contact->add_history();
    h->set_outgoing(false);
    h->set_text(chat.text());
    h->set_sent_at(chat.sent_at());
    h->set_received_at(unix_now());
    return message{contact->name(), false, chat.text(), chat.sent_at(), h->received_at()};
  }

  static result<std::vector<std::uint8_t>> decrypt(Profile& p, Contact& contact,
                                                   const crypto::identity_key_pair& me,
                                                   const crypto::opened_envelope& opened) {
    const auto random = crypto::system_random();
    if (opened.type == crypto::content_type::prekey_message) {
      auto header = crypto::parse_prekey_message(opened.message);
      if (!header) return std::unexpected(crypto_failure());
      const crypto::encrypted_message msg{crypto::message_type::prekey, opened.message};
      // A prekey message of the session we already have (they have not heard back yet).
      if (!contact.session().empty()) {
        auto current = crypto::session::deserialize(crypto::bytes_of(contact.session()));
        if (current && current->base_key() == header->base_key) {
          auto plain = current->decrypt(msg, random);
          if (!plain) return std::unexpected(crypto_failure());
          contact.set_session(as_string(current->serialize().view()));
          return plain;
        }
      }
      if (header->signed_prekey_id != p.signed_prekey().id())
        return std::unexpected(crypto_failure());
      const auto spk = signed_key(p.signed_prekey(), crypto::prekey_kind::signed_prekey);
      std::optional<crypto::x25519_key_pair> extra;
      int used_one_time = -1;
      if (header->one_time_kind == crypto::prekey_kind::one_time) {
        for (int i = 0; i < p.one_time_size(); ++i)
          if (p.one_time(i).id() == header->one_time_id) {
            extra = crypto::x25519_key_pair::from_secret(fixed<32>(p.one_time(i).secret()));
            used_one_time = i;
          }
        if (!extra) return std::unexpected(crypto_failure());
      } else if (header->one_time_kind == crypto::prekey_kind::last_resort) {
        extra = crypto::x25519_key_pair::from_secret(fixed<32>(p.last_resort().secret()));
      }
      auto s = crypto::session::respond(me, spk, extra ? &*extra : nullptr, *header);
      if (!s) return std::unexpected(crypto_failure());
      auto plain = s->decrypt(msg, random);
      if (!plain) return std::unexpected(crypto_failure());
      // The one-time key has done its job; deleting it keeps X3DH forward secret.
      if (used_one_time >= 0) p.mutable_one_time()->DeleteSubrange(used_one_time, 1);
      contact.set_session(as_string(s->serialize().view()));
      return plain;
    }
    if (opened.type != crypto::content_type::ratchet_message || contact.session().empty())
      return std::unexpected(crypto_failure());
    auto s = crypto::session::deserialize(crypto::bytes_of(contact.session()));
    if (!s) return std::unexpected(crypto_failure());
    auto plain = s->decrypt({crypto::message_type::ratchet, opened.message}, random);
    if (!plain) return std::unexpected(crypto_failure());
    contact.set_session(as_string(s->serialize().view()));
    return plain;
  }

  // Stores a batch of received envelopes, then acks them: after a crash
  // the server still has whatever we had not yet saved.
  static result<std::vector<message>> take(profile_store& store, relay_connection& conn,
                                           const std::vector<wire::Envelope>& batch) {
    std::vector<message> out;
    for (const auto& e : batch)
      if (auto m = receive(store.profile(), e)) out.push_back(std::move(*m));
    if (auto saved = store.save(); !saved) return std::unexpected(saved.error());
    // One ack per 256 envelopes, the most one ack may name.
    for (std::size_t start = 0; start < batch.size(); start += 256) {
      wire::ClientFrame ack;
      for (const auto& e :
           std::span(batch).subspan(start, std::min<std::size_t>(256, batch.size() - start))) {
        auto* delivered = ack.mutable_ack()->add_envelopes();
        delivered->set_seq(e.seq());
        delivered->set_envelope_id(e.envelope_id());
      }
      if (auto sent = conn.send_only(ack); !sent) return std::unexpected(sent.error());
    }
    return out;
  }
};

result<client> client::init(const std::filesystem::path& dir, std::string_view passphrase,
                            std::string server_url, std::string_view invite, std::string name,
                            connection_options options) {
  std::error_code ec;
  if (std::filesystem::exists(dir / "profile.vault", ec))
    return std::unexpected(make_error_code(errc::profile_exists));
  const auto random = crypto::system_random();
  auto id = crypto::identity_key_pair::generate(random);
  auto device = crypto::signing_key::generate(random);
  auto spk = crypto::generate_signed_prekey(id, k_signed_prekey_id, crypto::prekey_kind::signed_prekey, random);
  auto last = crypto::generate_signed_prekey(id, k_last_resort_id, crypto::prekey_kind::last_resort, random);

  Profile p;
  p.set_server_url(std::move(server_url));
  p.set_name(std::move(name));
  p.set_identity_signing_seed(as_string(id.signing().seed().view()));
  p.set_identity_dh_secret(as_string(id.dh().secret()));
  p.set_device_signing_seed(as_string(device.seed().view()));
  p.set_access_key(random_string(32));
  *p.mutable_signed_prekey() = impl::to_secret(spk);
  *p.mutable_last_resort() = impl::to_secret(last);

  auto conn = relay_connection::connect(p.server_url(), options);
  if (!conn) return std::unexpected(conn.error());
  const auto& challenge = (*conn)->challenge();
  wire::ClientFrame reg;
  auto* r = reg.mutable_register_();
  r->set_invite_token(std::string(invite));
  *r->mutable_identity() = id.public_keys().to_wire();
  r->set_device_signing_key(as_string(device.public_key()));
  r->set_access_key(p.access_key());
  r->set_signature(as_string(device.sign(crypto::bytes_of(crypto::register_message(
      crypto::bytes_of(challenge.server_id()), crypto::bytes_of(challenge.nonce()), invite)))));
  auto reply = (*conn)->request(reg);
  if (!reply) return std::unexpected(reply.error());
  if (!reply->has_registered()) return std::unexpected(make_error_code(errc::protocol_error));
  p.set_mailbox_id(reply->registered().mailbox_id());
  p.set_device_id(reply->registered().device_id());
  p.set_organisation(reply->registered().organisation());
  p.set_role(reply->registered().role());

  auto store = profile_store::create(dir, passphrase, std::move(p));
  if (!store) return std::unexpected(store.error());
  wire::ClientFrame upload;
  *upload.mutable_upload_prekeys()->mutable_signed_prekey() = spk.public_part().to_wire();
  *upload.mutable_upload_prekeys()->mutable_last_resort() = last.public_part().to_wire();
  if (auto up = (*conn)->request(upload); !up) return std::unexpected(up.error());
  if (auto topped = impl::replenish_prekeys(*store, **conn); !topped)
    return std::unexpected(topped.error());
  (*conn)->close();
  return client(std::move(*store), std::move(options));
}

result<client> client::open(const std::filesystem::path& dir, std::string_view passphrase,
                            connection_options options) {
  auto store = profile_store::open(dir, passphrase);
  if (!store) return std::unexpected(store.error());
  return client(std::move(*store), std::move(options));
}

std::string client::contact_code() const {
  const auto& p = profile();
  return encode_contact_code({p.mailbox_id(), impl::identity(p).public_keys().to_wire(), p.access_key()});
}

result<void> client::add_contact(std::string name, std::string_view code) {
  auto decoded = decode_contact_code(code);
  if (!decoded) return std::unexpected(decoded.error());
  auto& p = store_.profile();
  const auto& key = decoded->identity.signing_key();
  if (decoded->mailbox_id == p.mailbox_id())
    return std::unexpected(make_error_code(errc::bad_contact_code));  // our own code
  Contact* existing = impl::find(p, name);
  for (auto& c : *p.mutable_contacts())
    if (c.identity_signing_key() == key) {
      // Already known: either an "unknown-..." who wrote first, or a re-add.
      if (existing != nullptr && existing != &c) return std::unexpected(make_error_code(errc::contact_exists));
      existing = &c;
    }
  if (existing != nullptr && !existing->identity_signing_key().empty() &&
      existing->identity_signing_key() != key)
    return std::unexpected(make_error_code(errc::contact_exists));
  Contact* c = existing != nullptr ? existing : p.add_contacts();
  c->set_name(std::move(name));
  c->set_mailbox_id(decoded->mailbox_id);
  c->set_identity_signing_key(key);
  *c->mutable_identity() = decoded->identity;
  c->set_access_key(decoded->access_key);
  return store_.save();
}

std::vector<contact_summary> client::contacts() const {
  std::vector<contact_summary> out;
  for (const auto& c : profile().contacts()) out.push_back({c.name(), !c.access_key().empty()});
  return out;
}

result<void> client::send(std::string_view name, std::string_view text) {
  auto& p = store_.profile();
  Contact* contact = impl::find(p, name);
  if (contact == nullptr) return std::unexpected(make_error_code(errc::unknown_contact));
  if (contact->access_key().empty()) return std::unexpected(make_error_code(errc::no_access_key));
  const auto contact_name = contact->name();
  auto conn = impl::connect_and_login(p, options_);
  if (!conn) return std::unexpected(conn.error());
  const auto random = crypto::system_random();
  const auto me = impl::identity(p);

  std::optional<crypto::session> s;
  if (!contact->session().empty()) {
    auto restored = crypto::session::deserialize(crypto::bytes_of(contact->session()));
    if (!restored) return std::unexpected(make_error_code(errc::corrupt_profile));
    s = std::move(*restored);
  } else {
    wire::ClientFrame fetch;
    fetch.mutable_fetch_prekeys()->set_mailbox_id(contact->mailbox_id());
    fetch.mutable_fetch_prekeys()->set_access_key(contact->access_key());
    auto reply = (*conn)->request(fetch);
    if (!reply) return std::unexpected(reply.error());
    const auto& bundle = reply->prekey_bundle();
    // The server must hand out the very identity the contact code named.
    if (bundle.identity().SerializeAsString() != contact->identity().SerializeAsString() ||
        bundle.devices().empty())
      return std::unexpected(make_error_code(errc::identity_changed));
    auto verified = crypto::verify_bundle(bundle.identity(), bundle.devices(0));
    if (!verified) return std::unexpected(make_error_code(errc::identity_changed));
    auto started = crypto::session::initiate(me, *verified, random);
    if (!started) return std::unexpected(make_error_code(errc::identity_changed));
    s = std::move(*started);
    contact->set_device_id(bundle.devices(0).device_id());
  }
  auto recipient = crypto::public_identity::from_wire(contact->identity());
  if (!recipient) return std::unexpected(make_error_code(errc::corrupt_profile));

  ChatMessage chat;
  chat.set_text(std::string(text));
  chat.set_sent_at(unix_now());
  auto encrypted = s->encrypt(crypto::bytes_of(chat.SerializeAsString()));
  if (!encrypted) return std::unexpected(crypto_failure());
  crypto::mailbox_id my_mailbox{};
  std::copy_n(p.mailbox_id().begin(), my_mailbox.size(), my_mailbox.begin());
  const auto cert = crypto::sender_certificate::issue(me, my_mailbox, p.device_id());
  const auto type = encrypted->type == crypto::message_type::prekey
                        ? crypto::content_type::prekey_message
                        : crypto::content_type::ratchet_message;
  auto sealed = crypto::seal(me, cert, *recipient, type, encrypted->bytes, random);
  if (!sealed) return std::unexpected(crypto_failure());

  // The advanced ratchet is saved before anything leaves: a crash after
  // sending must never make us reuse a message key.
  contact->set_session(as_string(s->serialize().view()));
  auto* h = contact->add_history();
  h->set_outgoing(true);
  h->set_text(chat.text());
  h->set_sent_at(chat.sent_at());
  if (auto saved = store_.save(); !saved) return saved;

  wire::ClientFrame send;
  send.mutable_send()->set_envelope_id(random_string(16));
  send.mutable_send()->set_mailbox_id(contact->mailbox_id());
  send.mutable_send()->set_access_key(contact->access_key());
  auto* m = send.mutable_send()->add_messages();
  m->set_device_id(contact->device_id());
  m->set_sealed(as_string(*sealed));
  auto reply = (*conn)->request(send);
  (*conn)->close();
  if (!reply) {
    // Not delivered: take it out of the history again (the ratchet stays
    // advanced; the receiver treats the gap as a lost message).
    contact = impl::find(p, contact_name);
    contact->mutable_history()->RemoveLast();
    (void)store_.save();
    return std::unexpected(reply.error());
  }
  return {};
}

result<std::vector<message>> client::fetch() {
  auto conn = impl::connect_and_login(store_.profile(), options_);
  if (!conn) return std::unexpected(conn.error());
  if (auto topped = impl::replenish_prekeys(store_, **conn); !topped)
    return std::unexpected(topped.error());
  std::vector<message> out;
  std::vector<wire::Envelope> batch;
  bool drained = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto f = (*conn)->next(300ms);
    const bool quiet = !f && f.error() == errc::timeout;
    if (!f && !quiet) return std::unexpected(f.error());
    if (f && f->has_envelopes())
      std::ranges::move(*f->mutable_envelopes()->mutable_envelopes(), std::back_inserter(batch));
    if (f && f->has_queue_drained()) drained = true;
    // Store and ack what we have when the server pauses (its delivery
    // window is full), when it is done, or every 64 envelopes.
    if (!batch.empty() && (quiet || drained || batch.size() >= 64)) {
      auto taken = impl::take(store_, **conn, batch);
      if (!taken) return std::unexpected(taken.error());
      std::ranges::move(*taken, std::back_inserter(out));
      batch.clear();
    }
    if (drained && batch.empty()) {
      // One round trip so the acks are in before we close.
      wire::ClientFrame ping;
      ping.mutable_ping();
      (void)(*conn)->request(ping);
      (*conn)->close();
      return out;
    }
  }
  return std::unexpected(make_error_code(errc::timeout));
}

result<void> client::listen(const std::function<bool(const message&)>& on_message,
                            std::chrono::steady_clock::time_point until) {
  auto backoff = 500ms;
  while (std::chrono::steady_clock::now() < until) {
    auto conn = impl::connect_and_login(store_.profile(), options_);
    if (!conn) {
      if (conn.error() != errc::server_unreachable && conn.error() != errc::timeout)
        return std::unexpected(conn.error());
      std::this_thread::sleep_for(backoff);  // back off, up to 30 s
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
      continue;
    }
    backoff = 500ms;
    if (auto topped = impl::replenish_prekeys(store_, **conn); !topped)
      return std::unexpected(topped.error());
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      auto f = (*conn)->next(std::min<std::chrono::milliseconds>(left, 1s));
      if (!f && f.error() == errc::timeout) continue;
      if (!f) break;  // connection lost: reconnect
      if (!f->has_envelopes()) continue;
      const auto& pushed = f->envelopes().envelopes();
      auto taken = impl::take(store_, **conn, {pushed.begin(), pushed.end()});
      if (!taken) return std::unexpected(taken.error());
      for (const auto& m : *taken)
        if (!on_message(m)) return {};
    }
  }
  return {};
}

result<std::vector<message>> client::history(std::string_view name) const {
  for (const auto& c : profile().contacts())
    if (c.name() == name) {
      std::vector<message> out;
      for (const auto& h : c.history())
        out.push_back({c.name(), h.outgoing(), h.text(), h.sent_at(), h.received_at()});
      return out;
    }
  return std::unexpected(make_error_code(errc::unknown_contact));
}

result<std::string> client::safety_number(std::string_view name) const {
  for (const auto& c : profile().contacts())
    if (c.name() == name) {
      auto theirs = crypto::public_identity::from_wire(c.identity());
      if (!theirs) return std::unexpected(make_error_code(errc::corrupt_profile));
      return crypto::format_safety_number(
          crypto::safety_number(impl::identity(profile()).public_keys(), *theirs));
    }
  return std::unexpected(make_error_code(errc::unknown_contact));
}

}  // namespace haven::client
