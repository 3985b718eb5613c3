// The sealed-envelope parser (crypto::open_sealed) with Bob's fixed keys.
//
// Input: a mode byte, then
//   0: a whole sealed envelope, as the relay delivers it;
//   1: SealedContent bytes that this target pads and seals from Alice, so
//      the fuzzer reaches what open_sealed parses after both AEADs opened;
//   2: the same, already padded (sodium_unpad sees the fuzzer's bytes).
// Anything that opens must carry Alice's certificate: only her key sealed it.

#include <cstdlib>

#include "fixtures.hpp"
#include "haven/crypto/aead.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/hkdf.hpp"
#include "haven/crypto/kdf_labels.hpp"
#include "haven/crypto/padding.hpp"

namespace {

using namespace haven;

// What seal() derives before the content, for a fixed ephemeral key.
struct sealing {
  std::vector<std::uint8_t> header;  // 0x01 || e_pub || c_static
  std::vector<std::uint8_t> ad;      // header || R.signing || R.dh
  std::array<std::uint8_t, 56> key_nonce{};
};

sealing prepare(const crypto::identity_key_pair& sender, const crypto::public_identity& recipient) {
  const auto e = crypto::x25519_key_pair::from_secret(std::array<std::uint8_t, 32>{0x21});
  const auto& e_pub = e.public_key();
  std::vector<std::uint8_t> salt(e_pub.begin(), e_pub.end());
  salt.insert(salt.end(), recipient.dh_key.begin(), recipient.dh_key.end());
  std::array<std::uint8_t, 88> okm{};
  (void)crypto::hkdf(salt, crypto::x25519(e, recipient.dh_key).value().view(),
                     crypto::ascii(crypto::labels::seal_ephemeral), okm);
  sealing s;
  s.header.push_back(crypto::sealed_version);
  s.header.insert(s.header.end(), e_pub.begin(), e_pub.end());
  std::vector<std::uint8_t> static_ad = s.header;
  static_ad.insert(static_ad.end(), recipient.signing_key.begin(), recipient.signing_key.end());
  static_ad.insert(static_ad.end(), recipient.dh_key.begin(), recipient.dh_key.end());
  const auto c_static = crypto::aead_seal(std::span(okm).first(32), std::span(okm).subspan(32, 24), static_ad,
                                          sender.public_keys().dh_key);
  s.header.insert(s.header.end(), c_static.begin(), c_static.end());
  s.ad = s.header;
  s.ad.insert(s.ad.end(), recipient.signing_key.begin(), recipient.signing_key.end());
  s.ad.insert(s.ad.end(), recipient.dh_key.begin(), recipient.dh_key.end());
  (void)crypto::hkdf(std::span(okm).subspan(56), crypto::x25519(sender.dh(), recipient.dh_key).value().view(),
                     crypto::ascii(crypto::labels::seal_static), s.key_nonce);
  return s;
}

std::vector<std::uint8_t> seal_padded(const sealing& s, crypto::byte_view padded) {
  const auto key_nonce = std::span(s.key_nonce);
  auto out = s.header;
  const auto c = crypto::aead_seal(key_nonce.first(32), key_nonce.subspan(32), s.ad, padded);
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

const fuzz::ratchet_fixture* keys = nullptr;
const sealing* prepared = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  keys = new fuzz::ratchet_fixture(fuzz::make_ratchet_fixture());
  prepared = new sealing(prepare(keys->alice, keys->bob.public_keys()));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const crypto::byte_view input(data + 1, size - 1);
  std::vector<std::uint8_t> sealed;
  switch (data[0] % 3) {
    case 0: sealed.assign(input.begin(), input.end()); break;
    case 1: {
      auto padded = crypto::pad(input);
      if (!padded) return 0;
      sealed = seal_padded(*prepared, *padded);
      break;
    }
    default: sealed = seal_padded(*prepared, input); break;
  }
  auto opened = crypto::open_sealed(keys->bob, sealed);
  if (opened && !(opened->sender.identity == keys->alice.public_keys())) std::abort();
  return 0;
}
