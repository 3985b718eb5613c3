#include "haven/crypto/sender_keys.hpp"

#include <algorithm>

#include "chain_kdf.hpp"
#include "detail.hpp"
#include "e2e.pb.h"
#include "haven/crypto/aead.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/kdf_labels.hpp"
#include "haven/crypto/padding.hpp"

namespace haven::crypto {

using detail::as_bytes;
using detail::as_string;
using detail::byte_writer;
using detail::chain_step;
using detail::copy_exact;
using detail::message_aead;

namespace {

std::vector<std::uint8_t> message_ad(const distribution_id& d, std::uint32_t chain_id, std::uint32_t iteration,
                                     const ed25519_public_key& signing) {
  return byte_writer().bytes(d).u32(chain_id).u32(iteration).bytes(signing).take();
}

std::vector<std::uint8_t> signed_bytes(const distribution_id& d, std::uint32_t chain_id, std::uint32_t iteration,
                                       byte_view ciphertext) {
  return byte_writer().ascii(labels::sender_key).bytes(d).u32(chain_id).u32(iteration).bytes(ciphertext).take();
}

}  // namespace

result<sender_key_message_info> peek_sender_key_message(byte_view message) {
  e2e::SenderKeyMessage m;
  if (!m.ParseFromArray(message.data(), static_cast<int>(message.size()))) return fail(errc::malformed_message);
  sender_key_message_info info;
  if (!copy_exact(info.distribution, m.distribution_id())) return fail(errc::malformed_message);
  info.chain_id = m.chain_id();
  info.iteration = m.iteration();
  return info;
}

group_sender::group_sender(const distribution_id& d, std::uint32_t chain_id, std::uint32_t iteration,
                           const secret_array<32>& chain_key, signing_key key)
    : distribution_(d), chain_id_(chain_id), iteration_(iteration), chain_key_(chain_key), signing_(std::move(key)) {}

group_sender group_sender::create(const distribution_id& distribution, const random_source& random) {
  std::array<std::uint8_t, 4> id{};
  random(id);
  const std::uint32_t chain_id = (std::uint32_t{id[0]} << 24) | (std::uint32_t{id[1]} << 16) |
                                 (std::uint32_t{id[2]} << 8) | std::uint32_t{id[3]};
  secret_array<32> chain_key;
  random(chain_key.mutable_view());
  return group_sender(distribution, chain_id, 0, chain_key, signing_key::generate(random));
}

secret_bytes group_sender::distribution_message() const {
  e2e::SenderKeyDistribution d;
  d.set_distribution_id(as_string(distribution_));
  d.set_chain_id(chain_id_);
  d.set_iteration(iteration_);
  d.set_chain_key(as_string(chain_key_.view()));
  d.set_signing_key(as_string(signing_.public_key()));
  secret_bytes out(d.ByteSizeLong());
  d.SerializeToArray(out.data(), static_cast<int>(out.size()));
  detail::wipe(*d.mutable_chain_key());
  return out;
}

result<std::vector<std::uint8_t>> group_sender::encrypt(byte_view plaintext) {
  if (iteration_ == UINT32_MAX) return fail(errc::too_many_skipped);
  auto padded = pad(plaintext);
  if (!padded) return std::unexpected(padded.error());
  const auto step = chain_step(chain_key_);
  const auto params = message_aead(step.message_key, labels::sender_key_message_keys);
  const auto ct = aead_seal(params.key.view(), params.nonce,
                            message_ad(distribution_, chain_id_, iteration_, signing_.public_key()), *padded);
  e2e::SenderKeyMessage m;
  m.set_distribution_id(as_string(distribution_));
  m.set_chain_id(chain_id_);
  m.set_iteration(iteration_);
  m.set_ciphertext(as_string(ct));
  m.set_signature(as_string(signing_.sign(signed_bytes(distribution_, chain_id_, iteration_, ct))));
  std::vector<std::uint8_t> out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  chain_key_ = step.next_chain;
  ++iteration_;
  return out;
}

secret_bytes group_sender::serialize() const {
  e2e::SenderKeyState s;
  s.set_version(1);
  s.set_distribution_id(as_string(distribution_));
  s.set_chain_id(chain_id_);
  s.mutable_chain()->set_key(as_string(chain_key_.view()));
  s.mutable_chain()->set_index(iteration_);
  s.set_signing_public(as_string(signing_.public_key()));
  auto seed = signing_.seed();
  s.set_signing_seed(as_string(seed.view()));
  secret_bytes out(s.ByteSizeLong());
  s.SerializeToArray(out.data(), static_cast<int>(out.size()));
  detail::wipe(*s.mutable_chain()->mutable_key());
  detail::wipe(*s.mutable_signing_seed());
  return out;
}

result<group_sender> group_sender::deserialize(byte_view bytes) {
  e2e::SenderKeyState s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return fail(errc::malformed_message);
  if (s.version() != 1) return fail(errc::unsupported_version);
  distribution_id d{};
  secret_array<32> ck;
  secret_array<32> seed;
  const bool ok = copy_exact(d, s.distribution_id()) && copy_exact(ck, s.chain().key()) &&
                  copy_exact(seed, s.signing_seed());
  detail::wipe(*s.mutable_chain()->mutable_key());
  detail::wipe(*s.mutable_signing_seed());
  if (!ok) return fail(errc::invalid_argument);
  return group_sender(d, s.chain_id(), s.chain().index(), ck, signing_key::from_seed(seed.view()));
}

result<group_receiver> group_receiver::from_distribution(byte_view distribution_message, ratchet_limits limits) {
  e2e::SenderKeyDistribution d;
  if (!d.ParseFromArray(distribution_message.data(), static_cast<int>(distribution_message.size())))
    return fail(errc::malformed_message);
  group_receiver r;
  r.limits_ = limits;
  const bool ok = copy_exact(r.distribution_, d.distribution_id()) && copy_exact(r.chain_key_, d.chain_key()) &&
                  copy_exact(r.signing_public_, d.signing_key());
  detail::wipe(*d.mutable_chain_key());
  if (!ok) return fail(errc::invalid_argument);
  r.chain_id_ = d.chain_id();
  r.iteration_ = d.iteration();
  return r;
}

result<std::vector<std::uint8_t>> group_receiver::decrypt(byte_view message) {
  e2e::SenderKeyMessage m;
  if (!m.ParseFromArray(message.data(), static_cast<int>(message.size()))) return fail(errc::malformed_message);
  distribution_id d{};
  if (!copy_exact(d, m.distribution_id()) || m.ciphertext().size() < aead_tag_size)
    return fail(errc::malformed_message);
  if (d != distribution_ || m.chain_id() != chain_id_) return fail(errc::unknown_sender_chain);
  const std::uint32_t iteration = m.iteration();
  const auto ct = as_bytes(m.ciphertext());
  if (!verify_ed25519(signing_public_, signed_bytes(d, chain_id_, iteration, ct), as_bytes(m.signature())))
    return fail(errc::bad_signature);

  auto open_with = [&](const secret_array<32>& mk) -> result<std::vector<std::uint8_t>> {
    const auto params = message_aead(mk, labels::sender_key_message_keys);
    auto padded = aead_open(params.key.view(), params.nonce,
                            message_ad(distribution_, chain_id_, iteration, signing_public_), ct);
    if (!padded) return std::unexpected(padded.error());
    return unpad(*padded);
  };

  if (auto it = skipped_.find(iteration); it != skipped_.end()) {
    auto plain = open_with(it->second);
    if (plain) skipped_.erase(it);
    return plain;
  }
  if (iteration < iteration_) return fail(errc::duplicate_message);
  if (iteration - iteration_ > limits_.max_skip) return fail(errc::too_many_skipped);

  std::vector<std::pair<std::uint32_t, secret_array<32>>> new_skipped;
  secret_array<32> ck = chain_key_;
  std::uint32_t at = iteration_;
  for (; at < iteration; ++at) {
    auto step = chain_step(ck);
    new_skipped.emplace_back(at, step.message_key);
    ck = step.next_chain;
  }
  auto step = chain_step(ck);
  auto plain = open_with(step.message_key);
  if (!plain) return plain;
  // Authenticated: commit.
  chain_key_ = step.next_chain;
  iteration_ = iteration + 1;
  for (const auto& [i, k] : new_skipped) skipped_[i] = k;
  // Iterations only grow, so the smallest are the oldest.
  while (skipped_.size() > limits_.max_stored) skipped_.erase(skipped_.begin());
  return plain;
}

secret_bytes group_receiver::serialize() const {
  e2e::SenderKeyState s;
  s.set_version(1);
  s.set_distribution_id(as_string(distribution_));
  s.set_chain_id(chain_id_);
  s.mutable_chain()->set_key(as_string(chain_key_.view()));
  s.mutable_chain()->set_index(iteration_);
  s.set_signing_public(as_string(signing_public_));
  for (const auto& [i, k] : skipped_) {
    auto* sk = s.add_skipped();
    sk->set_counter(i);
    sk->set_message_key(as_string(k.view()));
  }
  secret_bytes out(s.ByteSizeLong());
  s.SerializeToArray(out.data(), static_cast<int>(out.size()));
  detail::wipe(*s.mutable_chain()->mutable_key());
  for (auto& sk : *s.mutable_skipped()) detail::wipe(*sk.mutable_message_key());
  return out;
}

result<group_receiver> group_receiver::deserialize(byte_view bytes, ratchet_limits limits) {
  e2e::SenderKeyState s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return fail(errc::malformed_message);
  if (s.version() != 1) return fail(errc::unsupported_version);
  group_receiver r;
  r.limits_ = limits;
  bool ok = copy_exact(r.distribution_, s.distribution_id()) && copy_exact(r.chain_key_, s.chain().key()) &&
            copy_exact(r.signing_public_, s.signing_public());
  r.chain_id_ = s.chain_id();
  r.iteration_ = s.chain().index();
  for (const auto& sk : s.skipped()) {
    secret_array<32> k;
    ok = ok && copy_exact(k, sk.message_key());
    r.skipped_[sk.counter()] = k;
  }
  detail::wipe(*s.mutable_chain()->mutable_key());
  for (auto& sk : *s.mutable_skipped()) detail::wipe(*sk.mutable_message_key());
  if (!ok) return fail(errc::invalid_argument);
  return r;
}

}  // namespace haven::crypto
