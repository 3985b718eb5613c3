#include "haven/crypto/safety_number.hpp"

#include <sodium.h>

#include <array>
#include <cstdio>

#include "haven/crypto/encoding.hpp"
#include "haven/crypto/kdf_labels.hpp"

namespace haven::crypto {

std::string fingerprint_digits(const public_identity& identity) {
  ensure_sodium();
  // Iterating makes a brute-force search for a colliding identity costly.
  std::array<std::uint8_t, crypto_hash_sha512_BYTES> d{};
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  const auto label = ascii(labels::safety_number);
  crypto_hash_sha512_update(&st, label.data(), label.size());
  crypto_hash_sha512_update(&st, identity.signing_key.data(), identity.signing_key.size());
  crypto_hash_sha512_update(&st, identity.dh_key.data(), identity.dh_key.size());
  crypto_hash_sha512_final(&st, d.data());
  for (int i = 0; i < safety_number_iterations; ++i) {
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, d.data(), d.size());
    crypto_hash_sha512_update(&st, identity.signing_key.data(), identity.signing_key.size());
    crypto_hash_sha512_update(&st, identity.dh_key.data(), identity.dh_key.size());
    crypto_hash_sha512_final(&st, d.data());
  }
  std::string out;
  for (int chunk = 0; chunk < 6; ++chunk) {
    std::uint64_t v = 0;
    for (int i = 0; i < 5; ++i) v = (v << 8) | d[static_cast<std::size_t>(chunk * 5 + i)];
    char buf[8];
    std::snprintf(buf, sizeof buf, "%05u", static_cast<unsigned>(v % 100000));
    out += buf;
  }
  return out;
}

std::string safety_number(const public_identity& a, const public_identity& b) {
  auto fa = fingerprint_digits(a);
  auto fb = fingerprint_digits(b);
  return fa < fb ? fa + fb : fb + fa;
}

std::string format_safety_number(std::string_view digits) {
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && i % 5 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

}  // namespace haven::crypto
