// Per-core rates of the end-to-end crypto: 1 KiB ratchet encrypt/decrypt,
// X3DH setups, sealed-envelope seal/open, group (sender key) messages.
#include <benchmark/benchmark.h>

#include <vector>

#include "haven/crypto/identity.hpp"
#include "haven/crypto/sealed_sender.hpp"
#include "haven/crypto/sender_keys.hpp"
#include "haven/crypto/session.hpp"

using namespace haven::crypto;

namespace {

const std::vector<std::uint8_t> kib(1024, 0x61);

struct pair_of_sessions {
  random_source random = system_random();
  identity_key_pair alice = identity_key_pair::generate(random);
  identity_key_pair bob = identity_key_pair::generate(random);
  signed_prekey spk = generate_signed_prekey(bob, 1, prekey_kind::signed_prekey, random);
  std::vector<one_time_prekey> otk = generate_one_time_prekeys(1, 1, random);
  prekey_bundle bundle;
  std::optional<session> a, b;

  pair_of_sessions() {
    haven::wire::DevicePrekeys d;
    *d.mutable_signed_prekey() = spk.public_part().to_wire();
    *d.mutable_one_time() = otk[0].public_part().to_wire();
    bundle = verify_bundle(bob.public_keys().to_wire(), d).value();
    a = session::initiate(alice, bundle, random).value();
    auto first = a->encrypt(kib).value();
    b = session::respond(bob, spk, &otk[0].key, parse_prekey_message(first.bytes).value()).value();
    (void)b->decrypt(first, random).value();
    // One reply so Alice sends plain ratchet messages.
    (void)a->decrypt(b->encrypt(kib).value(), random).value();
  }
};

void ratchet_encrypt_1kib(benchmark::State& state) {
  pair_of_sessions p;
  for (auto _ : state) benchmark::DoNotOptimize(p.a->encrypt(kib));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 1024);
}
BENCHMARK(ratchet_encrypt_1kib);

constexpr int decrypt_batch = 50000;

void ratchet_decrypt_1kib(benchmark::State& state) {
  pair_of_sessions p;
  std::vector<encrypted_message> batch;
  batch.reserve(decrypt_batch);
  for (int i = 0; i < decrypt_batch; ++i) batch.push_back(p.a->encrypt(kib).value());
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(p.b->decrypt(batch[i++], p.random));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 1024);
}
BENCHMARK(ratchet_decrypt_1kib)->Iterations(decrypt_batch);

// A full round trip with a DH ratchet step on every message (worst case:
// strictly alternating senders).
void ratchet_ping_pong_1kib(benchmark::State& state) {
  pair_of_sessions p;
  bool alice_turn = true;
  for (auto _ : state) {
    auto& from = alice_turn ? *p.a : *p.b;
    auto& to = alice_turn ? *p.b : *p.a;
    benchmark::DoNotOptimize(to.decrypt(from.encrypt(kib).value(), p.random));
    alice_turn = !alice_turn;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ratchet_ping_pong_1kib);

void x3dh_initiate(benchmark::State& state) {
  pair_of_sessions p;
  for (auto _ : state) benchmark::DoNotOptimize(session::initiate(p.alice, p.bundle, p.random));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(x3dh_initiate);

// Both sides of X3DH: initiate, then respond to the prekey header.
void x3dh_setup_both_sides(benchmark::State& state) {
  pair_of_sessions p;
  auto s = session::initiate(p.alice, p.bundle, p.random).value();
  auto header = parse_prekey_message(s.encrypt(kib).value().bytes).value();
  for (auto _ : state) {
    benchmark::DoNotOptimize(session::initiate(p.alice, p.bundle, p.random));
    benchmark::DoNotOptimize(session::respond(p.bob, p.spk, &p.otk[0].key, header));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(x3dh_setup_both_sides);

void bundle_verify(benchmark::State& state) {
  pair_of_sessions p;
  haven::wire::DevicePrekeys d;
  *d.mutable_signed_prekey() = p.spk.public_part().to_wire();
  *d.mutable_one_time() = p.otk[0].public_part().to_wire();
  const auto id = p.bob.public_keys().to_wire();
  for (auto _ : state) benchmark::DoNotOptimize(verify_bundle(id, d));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bundle_verify);

void sealed_seal_1kib(benchmark::State& state) {
  pair_of_sessions p;
  auto cert = sender_certificate::issue(p.alice, mailbox_id{}, 1);
  for (auto _ : state)
    benchmark::DoNotOptimize(
        seal(p.alice, cert, p.bob.public_keys(), content_type::ratchet_message, kib, p.random));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(sealed_seal_1kib);

void sealed_open_1kib(benchmark::State& state) {
  pair_of_sessions p;
  auto cert = sender_certificate::issue(p.alice, mailbox_id{}, 1);
  auto sealed = seal(p.alice, cert, p.bob.public_keys(), content_type::ratchet_message, kib, p.random).value();
  for (auto _ : state) benchmark::DoNotOptimize(open_sealed(p.bob, sealed));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(sealed_open_1kib);

void group_encrypt_1kib(benchmark::State& state) {
  auto random = system_random();
  auto sender = group_sender::create(distribution_id{}, random);
  for (auto _ : state) benchmark::DoNotOptimize(sender.encrypt(kib));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(group_encrypt_1kib);

void group_decrypt_1kib(benchmark::State& state) {
  auto random = system_random();
  auto sender = group_sender::create(distribution_id{}, random);
  auto receiver = group_receiver::from_distribution(sender.distribution_message().view()).value();
  std::vector<std::vector<std::uint8_t>> batch;
  for (int i = 0; i < decrypt_batch; ++i) batch.push_back(sender.encrypt(kib).value());
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(receiver.decrypt(batch[i++]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(group_decrypt_1kib)->Iterations(decrypt_batch);

}  // namespace

BENCHMARK_MAIN();
