#include "haven/crypto/signing.hpp"

#include <sodium.h>

namespace haven::crypto {

signing_key signing_key::generate(const random_source& random) {
  secret_bytes seed(crypto_sign_SEEDBYTES);
  random(seed.mutable_view());
  return from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
}

signing_key signing_key::from_seed(std::span<const std::uint8_t, 32> seed) {
  ensure_sodium();
  secret_bytes secret(crypto_sign_SECRETKEYBYTES);
  ed25519_public_key pub{};
  crypto_sign_seed_keypair(pub.data(), secret.data(), seed.data());
  return signing_key(std::move(secret), pub);
}

ed25519_signature signing_key::sign(std::span<const std::uint8_t> message) const noexcept {
  ed25519_signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

secret_bytes signing_key::seed() const {
  secret_bytes out(crypto_sign_SEEDBYTES);
  crypto_sign_ed25519_sk_to_seed(out.data(), secret_.data());
  return out;
}

}  // namespace haven::crypto
