#include "haven/crypto/session.hpp"

#include <sodium.h>

#include <algorithm>

#include "detail.hpp"
#include "e2e.pb.h"
#include "haven/crypto/aead.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/kdf_labels.hpp"
#include "chain_kdf.hpp"

namespace haven::crypto {

using detail::as_bytes;
using detail::as_string;
using detail::byte_writer;
using detail::aead_params;
using detail::chain_step;
using detail::copy_exact;
using detail::message_aead;

namespace {

struct chain {
  secret_array<32> key;
  std::uint32_t index = 0;
};

struct skipped_id {
  x25519_public_key ratchet_key{};
  std::uint32_t counter = 0;
  auto operator<=>(const skipped_id&) const = default;
};

struct skipped_entry {
  secret_array<32> key;
  std::uint64_t seq = 0;
};

struct root_and_chain {
  secret_array<32> root;
  secret_array<32> chain;
};

// KDF_RK: HKDF(salt = root key, ikm = DH output, "haven-ratchet-v1") -> 64
// bytes: next root key || chain key.
root_and_chain kdf_rk(const secret_array<32>& root, const secret_array<32>& dh_out) {
  secret_array<64> okm;
  (void)hkdf(root.view(), dh_out.view(), ascii(labels::ratchet), okm.mutable_view());
  root_and_chain out;
  std::copy_n(okm.data(), 32, out.root.data());
  std::copy_n(okm.data() + 32, 32, out.chain.data());
  return out;
}

std::vector<std::uint8_t> header_ad(const std::array<std::uint8_t, session_ad_size>& ad,
                                    const x25519_public_key& ratchet_key, std::uint32_t counter,
                                    std::uint32_t previous_counter) {
  return byte_writer().bytes(ad).bytes(ratchet_key).u32(counter).u32(previous_counter).take();
}

// X3DH: SK = HKDF(salt = 32 zero bytes, ikm = 0xFF * 32 || DH1 || DH2 || DH3
// [|| DH4], "haven-x3dh-v1") -> 32 bytes.
secret_array<32> x3dh_secret(std::initializer_list<const secret_array<32>*> dhs) {
  secret_bytes ikm(32 + 32 * dhs.size());
  std::fill_n(ikm.data(), 32, 0xFF);
  std::size_t at = 32;
  for (const auto* dh : dhs) {
    std::copy_n(dh->data(), 32, ikm.data() + at);
    at += 32;
  }
  static constexpr std::array<std::uint8_t, 32> zero_salt{};
  secret_array<32> sk;
  (void)hkdf(zero_salt, ikm.view(), ascii(labels::x3dh), sk.mutable_view());
  return sk;
}

std::array<std::uint8_t, session_ad_size> session_ad(const public_identity& initiator,
                                                     const public_identity& responder) {
  std::array<std::uint8_t, session_ad_size> ad{};
  const auto a = initiator.encoded();
  const auto b = responder.encoded();
  std::copy(a.begin(), a.end(), ad.begin());
  std::copy(b.begin(), b.end(), ad.begin() + 64);
  return ad;
}

wire::PrekeyKind to_wire_kind(prekey_kind k) { return static_cast<wire::PrekeyKind>(k); }

}  // namespace

struct session::state {
  ratchet_limits limits;
  public_identity local;
  public_identity remote;
  std::array<std::uint8_t, session_ad_size> ad{};
  secret_array<32> root;
  x25519_key_pair ratchet;
  std::optional<x25519_public_key> remote_ratchet;
  std::optional<chain> sending;
  std::optional<chain> receiving;
  std::uint32_t previous_counter = 0;
  std::map<skipped_id, skipped_entry> skipped;
  std::map<std::uint64_t, skipped_id> skipped_order;
  std::uint64_t next_seq = 0;
  x25519_public_key base_key{};
  bool initiator = false;
  std::optional<prekey_header> pending;

  void store_skipped(const skipped_id& id, const secret_array<32>& key) {
    const auto seq = next_seq++;
    skipped[id] = skipped_entry{key, seq};
    skipped_order[seq] = id;
    while (skipped.size() > limits.max_stored) {
      auto oldest = skipped_order.begin();
      skipped.erase(oldest->second);
      skipped_order.erase(oldest);
    }
  }

  void erase_skipped(std::map<skipped_id, skipped_entry>::iterator it) {
    skipped_order.erase(it->second.seq);
    skipped.erase(it);
  }
};

session::session(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
session::session(session&&) noexcept = default;
session& session::operator=(session&&) noexcept = default;
session::~session() = default;

const public_identity& session::remote_identity() const noexcept { return state_->remote; }
const public_identity& session::local_identity() const noexcept { return state_->local; }
const x25519_public_key& session::base_key() const noexcept { return state_->base_key; }
std::size_t session::skipped_key_count() const noexcept { return state_->skipped.size(); }
bool session::awaiting_reply() const noexcept { return state_->pending.has_value(); }

result<prekey_header> parse_prekey_message(byte_view bytes) {
  e2e::PrekeyMessage m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return fail(errc::malformed_message);
  prekey_header out;
  auto id = public_identity::from_wire(m.initiator());
  if (!id) return std::unexpected(id.error());
  out.initiator = *id;
  if (!copy_exact(out.base_key, m.base_key())) return fail(errc::invalid_argument);
  out.signed_prekey_id = m.signed_prekey_id();
  switch (m.one_time_kind()) {
    case wire::PREKEY_KIND_UNSPECIFIED: out.one_time_kind = prekey_kind::none; break;
    case wire::PREKEY_KIND_ONE_TIME: out.one_time_kind = prekey_kind::one_time; break;
    case wire::PREKEY_KIND_LAST_RESORT: out.one_time_kind = prekey_kind::last_resort; break;
    default: return fail(errc::invalid_argument);
  }
  out.one_time_id = m.one_time_id();
  if (is_low_order(out.base_key)) return fail(errc::weak_key);
  return out;
}

result<session> session::initiate(const identity_key_pair& self, const prekey_bundle& bundle,
                                  const random_source& random, ratchet_limits limits) {
  auto base = x25519_key_pair::generate(random);
  const x25519_public_key& spk = bundle.signed_prekey.public_key;
  prekey_kind kind = prekey_kind::none;
  std::uint32_t one_time_id = 0;
  std::optional<x25519_public_key> one_time;
  if (bundle.one_time) {
    kind = prekey_kind::one_time;
    one_time_id = bundle.one_time->id;
    one_time = bundle.one_time->public_key;
  } else if (bundle.last_resort) {
    kind = prekey_kind::last_resort;
    one_time_id = bundle.last_resort->id;
    one_time = bundle.last_resort->public_key;
  }

  auto dh1 = x25519(self.dh(), spk);
  auto dh2 = x25519(base, bundle.identity.dh_key);
  auto dh3 = x25519(base, spk);
  if (!dh1 || !dh2 || !dh3) return fail(errc::weak_key);
  secret_array<32> sk;
  if (one_time) {
    auto dh4 = x25519(base, *one_time);
    if (!dh4) return fail(errc::weak_key);
    sk = x3dh_secret({&*dh1, &*dh2, &*dh3, &*dh4});
  } else {
    sk = x3dh_secret({&*dh1, &*dh2, &*dh3});
  }

  auto st = std::make_unique<state>();
  st->limits = limits;
  st->local = self.public_keys();
  st->remote = bundle.identity;
  st->ad = session_ad(st->local, st->remote);
  st->initiator = true;
  st->base_key = base.public_key();
  st->ratchet = x25519_key_pair::generate(random);
  auto dh = x25519(st->ratchet, spk);
  if (!dh) return fail(errc::weak_key);
  auto rc = kdf_rk(sk, *dh);
  st->root = rc.root;
  st->sending = chain{rc.chain, 0};
  st->remote_ratchet = spk;
  st->pending = prekey_header{self.public_keys(), base.public_key(), bundle.signed_prekey.id, kind, one_time_id};
  return session(std::move(st));
}

result<session> session::respond(const identity_key_pair& self, const signed_prekey& spk,
                                 const x25519_key_pair* one_time_key, const prekey_header& message,
                                 ratchet_limits limits) {
  if (spk.id != message.signed_prekey_id || spk.kind != prekey_kind::signed_prekey)
    return fail(errc::invalid_argument);
  if (message.one_time_kind != prekey_kind::none && one_time_key == nullptr) return fail(errc::missing_prekey);
  if (message.one_time_kind == prekey_kind::none && one_time_key != nullptr) return fail(errc::invalid_argument);

  auto dh1 = x25519(spk.key, message.initiator.dh_key);
  auto dh2 = x25519(self.dh(), message.base_key);
  auto dh3 = x25519(spk.key, message.base_key);
  if (!dh1 || !dh2 || !dh3) return fail(errc::weak_key);
  secret_array<32> sk;
  if (one_time_key != nullptr) {
    auto dh4 = x25519(*one_time_key, message.base_key);
    if (!dh4) return fail(errc::weak_key);
    sk = x3dh_secret({&*dh1, &*dh2, &*dh3, &*dh4});
  } else {
    sk = x3dh_secret({&*dh1, &*dh2, &*dh3});
  }

  auto st = std::make_unique<state>();
  st->limits = limits;
  st->local = self.public_keys();
  st->remote = message.initiator;
  st->ad = session_ad(st->remote, st->local);
  st->initiator = false;
  st->base_key = message.base_key;
  st->root = sk;
  // The signed prekey is the responder's first ratchet key; it is replaced
  // at the first DH ratchet step, when the first message is decrypted.
  st->ratchet = spk.key.clone();
  return session(std::move(st));
}

result<encrypted_message> session::encrypt(byte_view plaintext) {
  auto& st = *state_;
  if (!st.sending) return fail(errc::no_sending_chain);
  if (st.sending->index == UINT32_MAX) return fail(errc::too_many_skipped);
  const auto step = chain_step(st.sending->key);
  const std::uint32_t counter = st.sending->index;
  const auto params = message_aead(step.message_key, labels::message_keys);
  const auto ad = header_ad(st.ad, st.ratchet.public_key(), counter, st.previous_counter);

  e2e::RatchetMessage rm;
  rm.set_ratchet_key(as_string(st.ratchet.public_key()));
  rm.set_counter(counter);
  rm.set_previous_counter(st.previous_counter);
  const auto ct = aead_seal(params.key.view(), params.nonce, ad, plaintext);
  rm.set_ciphertext(as_string(ct));

  encrypted_message out;
  if (st.pending) {
    e2e::PrekeyMessage pm;
    *pm.mutable_initiator() = st.pending->initiator.to_wire();
    pm.set_base_key(as_string(st.pending->base_key));
    pm.set_signed_prekey_id(st.pending->signed_prekey_id);
    pm.set_one_time_kind(to_wire_kind(st.pending->one_time_kind));
    pm.set_one_time_id(st.pending->one_time_id);
    *pm.mutable_message() = std::move(rm);
    out.type = message_type::prekey;
    out.bytes.resize(pm.ByteSizeLong());
    pm.SerializeToArray(out.bytes.data(), static_cast<int>(out.bytes.size()));
  } else {
    out.type = message_type::ratchet;
    out.bytes.resize(rm.ByteSizeLong());
    rm.SerializeToArray(out.bytes.data(), static_cast<int>(out.bytes.size()));
  }
  st.sending->key = step.next_chain;
  ++st.sending->index;
  return out;
}

result<std::vector<std::uint8_t>> session::decrypt(const encrypted_message& message, const random_source& random) {
  auto& st = *state_;
  e2e::RatchetMessage rm;
  if (message.type == message_type::prekey) {
    e2e::PrekeyMessage pm;
    if (!pm.ParseFromArray(message.bytes.data(), static_cast<int>(message.bytes.size())))
      return fail(errc::malformed_message);
    x25519_public_key base{};
    if (!copy_exact(base, pm.base_key())) return fail(errc::malformed_message);
    // Only the responder of this very X3DH run accepts its prekey messages.
    if (st.initiator || base != st.base_key || pm.initiator().signing_key() != as_string(st.remote.signing_key) ||
        pm.initiator().dh_key() != as_string(st.remote.dh_key))
      return fail(errc::session_mismatch);
    rm = pm.message();
  } else if (message.type == message_type::ratchet) {
    if (!rm.ParseFromArray(message.bytes.data(), static_cast<int>(message.bytes.size())))
      return fail(errc::malformed_message);
  } else {
    return fail(errc::malformed_message);
  }

  skipped_id id;
  if (!copy_exact(id.ratchet_key, rm.ratchet_key()) || rm.ciphertext().size() < aead_tag_size)
    return fail(errc::malformed_message);
  id.counter = rm.counter();
  const std::uint32_t previous_counter = rm.previous_counter();
  const auto ct = as_bytes(rm.ciphertext());
  const auto ad = header_ad(st.ad, id.ratchet_key, id.counter, previous_counter);

  auto open_with = [&](const secret_array<32>& mk) {
    const auto params = message_aead(mk, labels::message_keys);
    return aead_open(params.key.view(), params.nonce, ad, ct);
  };

  // 1. A key we skipped earlier.
  if (auto it = st.skipped.find(id); it != st.skipped.end()) {
    auto plain = open_with(it->second.key);
    if (!plain) return std::unexpected(plain.error());
    st.erase_skipped(it);
    st.pending.reset();
    return plain;
  }

  std::vector<std::pair<skipped_id, secret_array<32>>> new_skipped;
  auto skip_to = [&](const x25519_public_key& rk, chain& c, std::uint32_t until) {
    while (c.index < until) {
      auto step = chain_step(c.key);
      new_skipped.emplace_back(skipped_id{rk, c.index}, step.message_key);
      c.key = step.next_chain;
      ++c.index;
    }
  };

  // 2. The current receiving chain.
  if (st.remote_ratchet && id.ratchet_key == *st.remote_ratchet) {
    if (!st.receiving) return fail(errc::decryption_failed);
    if (id.counter < st.receiving->index) return fail(errc::duplicate_message);
    if (id.counter - st.receiving->index > st.limits.max_skip) return fail(errc::too_many_skipped);
    chain c = *st.receiving;
    skip_to(id.ratchet_key, c, id.counter);
    auto step = chain_step(c.key);
    auto plain = open_with(step.message_key);
    if (!plain) return std::unexpected(plain.error());
    // Authenticated: commit.
    c.key = step.next_chain;
    ++c.index;
    st.receiving = c;
    for (const auto& [sid, key] : new_skipped) st.store_skipped(sid, key);
    st.pending.reset();
    return plain;
  }

  // 3. A new ratchet key from the peer: a DH ratchet step, computed in locals.
  if (st.receiving && previous_counter > st.receiving->index &&
      previous_counter - st.receiving->index > st.limits.max_skip)
    return fail(errc::too_many_skipped);
  if (id.counter > st.limits.max_skip) return fail(errc::too_many_skipped);
  std::optional<chain> old_chain = st.receiving;
  if (old_chain && st.remote_ratchet) skip_to(*st.remote_ratchet, *old_chain, previous_counter);
  auto dh_in = x25519(st.ratchet, id.ratchet_key);
  if (!dh_in) return std::unexpected(dh_in.error());
  auto rc1 = kdf_rk(st.root, *dh_in);
  chain recv{rc1.chain, 0};
  skip_to(id.ratchet_key, recv, id.counter);
  auto step = chain_step(recv.key);
  auto plain = open_with(step.message_key);
  if (!plain) return std::unexpected(plain.error());
  recv.key = step.next_chain;
  ++recv.index;

  // Authenticated: now draw our next ratchet key and commit.
  auto next_ratchet = x25519_key_pair::generate(random);
  auto dh_out = x25519(next_ratchet, id.ratchet_key);
  if (!dh_out) return std::unexpected(dh_out.error());
  auto rc2 = kdf_rk(rc1.root, *dh_out);
  st.previous_counter = st.sending ? st.sending->index : 0;
  st.sending = chain{rc2.chain, 0};
  st.receiving = recv;
  st.root = rc2.root;
  st.ratchet = std::move(next_ratchet);
  st.remote_ratchet = id.ratchet_key;
  for (const auto& [sid, key] : new_skipped) st.store_skipped(sid, key);
  st.pending.reset();
  return plain;
}

secret_bytes session::serialize() const {
  const auto& st = *state_;
  e2e::SessionState s;
  s.set_version(1);
  *s.mutable_local_identity() = st.local.to_wire();
  *s.mutable_remote_identity() = st.remote.to_wire();
  s.set_root_key(as_string(st.root.view()));
  s.set_ratchet_secret(as_string(st.ratchet.secret()));
  if (st.remote_ratchet) s.set_remote_ratchet_key(as_string(*st.remote_ratchet));
  if (st.sending) {
    s.mutable_sending()->set_key(as_string(st.sending->key.view()));
    s.mutable_sending()->set_index(st.sending->index);
  }
  if (st.receiving) {
    s.mutable_receiving()->set_key(as_string(st.receiving->key.view()));
    s.mutable_receiving()->set_index(st.receiving->index);
  }
  s.set_previous_counter(st.previous_counter);
  for (const auto& [seq, sid] : st.skipped_order) {
    auto* k = s.add_skipped();
    k->set_ratchet_key(as_string(sid.ratchet_key));
    k->set_counter(sid.counter);
    k->set_message_key(as_string(st.skipped.at(sid).key.view()));
  }
  s.set_base_key(as_string(st.base_key));
  s.set_initiator(st.initiator);
  if (st.pending) {
    auto* p = s.mutable_pending_prekey();
    *p->mutable_initiator() = st.pending->initiator.to_wire();
    p->set_base_key(as_string(st.pending->base_key));
    p->set_signed_prekey_id(st.pending->signed_prekey_id);
    p->set_one_time_kind(to_wire_kind(st.pending->one_time_kind));
    p->set_one_time_id(st.pending->one_time_id);
  }
  secret_bytes out(s.ByteSizeLong());
  s.SerializeToArray(out.data(), static_cast<int>(out.size()));
  detail::wipe(*s.mutable_root_key());
  detail::wipe(*s.mutable_ratchet_secret());
  if (s.has_sending()) detail::wipe(*s.mutable_sending()->mutable_key());
  if (s.has_receiving()) detail::wipe(*s.mutable_receiving()->mutable_key());
  for (auto& k : *s.mutable_skipped()) detail::wipe(*k.mutable_message_key());
  return out;
}

result<session> session::deserialize(byte_view bytes, ratchet_limits limits) {
  e2e::SessionState s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return fail(errc::malformed_message);
  struct wiper {
    e2e::SessionState& s;
    ~wiper() {
      detail::wipe(*s.mutable_root_key());
      detail::wipe(*s.mutable_ratchet_secret());
      if (s.has_sending()) detail::wipe(*s.mutable_sending()->mutable_key());
      if (s.has_receiving()) detail::wipe(*s.mutable_receiving()->mutable_key());
      for (auto& k : *s.mutable_skipped()) detail::wipe(*k.mutable_message_key());
    }
  } wipe_on_exit{s};
  if (s.version() != 1) return fail(errc::unsupported_version);

  auto st = std::make_unique<state>();
  st->limits = limits;
  auto local = public_identity::from_wire(s.local_identity());
  auto remote = public_identity::from_wire(s.remote_identity());
  if (!local || !remote) return fail(errc::invalid_argument);
  st->local = *local;
  st->remote = *remote;
  st->initiator = s.initiator();
  st->ad = st->initiator ? session_ad(st->local, st->remote) : session_ad(st->remote, st->local);
  std::array<std::uint8_t, 32> ratchet_secret{};
  if (!copy_exact(st->root, s.root_key()) || !copy_exact(ratchet_secret, s.ratchet_secret()) ||
      !copy_exact(st->base_key, s.base_key()))
    return fail(errc::invalid_argument);
  st->ratchet = x25519_key_pair::from_secret(ratchet_secret);
  sodium_memzero(ratchet_secret.data(), ratchet_secret.size());
  if (!s.remote_ratchet_key().empty()) {
    x25519_public_key rk{};
    if (!copy_exact(rk, s.remote_ratchet_key())) return fail(errc::invalid_argument);
    st->remote_ratchet = rk;
  }
  if (s.has_sending()) {
    chain c;
    if (!copy_exact(c.key, s.sending().key())) return fail(errc::invalid_argument);
    c.index = s.sending().index();
    st->sending = c;
  }
  if (s.has_receiving()) {
    chain c;
    if (!copy_exact(c.key, s.receiving().key())) return fail(errc::invalid_argument);
    c.index = s.receiving().index();
    st->receiving = c;
  }
  st->previous_counter = s.previous_counter();
  for (const auto& k : s.skipped()) {
    skipped_id sid;
    secret_array<32> key;
    if (!copy_exact(sid.ratchet_key, k.ratchet_key()) || !copy_exact(key, k.message_key()))
      return fail(errc::invalid_argument);
    sid.counter = k.counter();
    st->store_skipped(sid, key);
  }
  if (s.has_pending_prekey()) {
    const auto& p = s.pending_prekey();
    prekey_header pm;
    pm.initiator = st->local;
    if (!copy_exact(pm.base_key, p.base_key())) return fail(errc::invalid_argument);
    pm.signed_prekey_id = p.signed_prekey_id();
    pm.one_time_kind = static_cast<prekey_kind>(p.one_time_kind());
    pm.one_time_id = p.one_time_id();
    st->pending = pm;
  }
  return session(std::move(st));
}

}  // namespace haven::crypto
