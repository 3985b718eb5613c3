#include "haven/crypto/hkdf.hpp"

#include <sodium.h>

#include <algorithm>

#include "detail.hpp"

namespace haven::crypto {

secret_array<32> hmac_sha256(byte_view key, std::initializer_list<byte_view> parts) noexcept {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, detail::nonnull(key), key.size());
  for (const auto& part : parts) crypto_auth_hmacsha256_update(&state, detail::nonnull(part), part.size());
  secret_array<32> mac;
  crypto_auth_hmacsha256_final(&state, mac.data());
  sodium_memzero(&state, sizeof state);
  return mac;
}

secret_array<32> hkdf_extract(byte_view salt, byte_view ikm) noexcept { return hmac_sha256(salt, {ikm}); }

result<void> hkdf_expand(byte_view prk, byte_view info, std::span<std::uint8_t> out) noexcept {
  if (out.size() > hkdf_max_length || prk.empty()) return fail(errc::invalid_argument);
  secret_array<32> block;
  std::size_t done = 0;
  for (std::uint8_t counter = 1; done < out.size(); ++counter) {
    // T(i) = HMAC(PRK, T(i-1) || info || i), with T(0) empty.
    const byte_view previous = counter == 1 ? byte_view{} : byte_view{block.view()};
    const std::uint8_t c[1] = {counter};
    block = hmac_sha256(prk, {previous, info, byte_view{c}});
    const std::size_t take = std::min<std::size_t>(32, out.size() - done);
    std::copy_n(block.data(), take, out.data() + done);
    done += take;
  }
  return {};
}

result<void> hkdf(byte_view salt, byte_view ikm, byte_view info, std::span<std::uint8_t> out) noexcept {
  const auto prk = hkdf_extract(salt, ikm);
  return hkdf_expand(prk.view(), info, out);
}

result<secret_bytes> hkdf(byte_view salt, byte_view ikm, byte_view info, std::size_t length) {
  if (length > hkdf_max_length) return fail(errc::invalid_argument);
  secret_bytes out(length);
  if (auto r = hkdf(salt, ikm, info, out.mutable_view()); !r) return std::unexpected(r.error());
  return out;
}

}  // namespace haven::crypto
