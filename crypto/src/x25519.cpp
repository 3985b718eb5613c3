#include "haven/crypto/x25519.hpp"

#include <sodium.h>

#include <stdexcept>

namespace haven::crypto {

x25519_key_pair x25519_key_pair::generate(const random_source& random) {
  secret_array<32> secret;
  random(secret.mutable_view());
  return from_secret(secret.view());
}

x25519_key_pair x25519_key_pair::from_secret(std::span<const std::uint8_t, 32> secret) {
  ensure_sodium();
  x25519_key_pair pair;
  pair.secret_ = secret_bytes::copy_of(secret);
  // Cannot fail for a clamped scalar; checked anyway, as every scalarmult is.
  if (crypto_scalarmult_base(pair.public_key_.data(), pair.secret_.data()) != 0)
    throw std::logic_error("X25519 base point multiplication failed");
  return pair;
}

x25519_key_pair x25519_key_pair::clone() const {
  x25519_key_pair pair;
  pair.secret_ = secret_bytes::copy_of(secret_.view());
  pair.public_key_ = public_key_;
  return pair;
}

result<secret_array<32>> x25519(const x25519_key_pair& ours, byte_view their_public) noexcept {
  if (their_public.size() != x25519_key_size || ours.secret().size() != 32) return fail(errc::invalid_argument);
  secret_array<32> shared;
  // libsodium returns -1 exactly when the result is all zeros.
  if (crypto_scalarmult(shared.data(), ours.secret().data(), their_public.data()) != 0)
    return fail(errc::weak_key);
  return shared;
}

bool is_low_order(byte_view public_key) noexcept {
  if (public_key.size() != x25519_key_size) return true;
  // Clamping makes every scalar a multiple of the cofactor 8, so the product
  // is zero iff the point lies in the small subgroup (on the curve or twist).
  static constexpr std::array<std::uint8_t, 32> probe = {
      0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
      0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};
  std::array<std::uint8_t, 32> out{};
  const bool low = crypto_scalarmult(out.data(), probe.data(), public_key.data()) != 0;
  sodium_memzero(out.data(), out.size());
  return low;
}

}  // namespace haven::crypto
