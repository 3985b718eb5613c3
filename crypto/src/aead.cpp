#include "haven/crypto/aead.hpp"

#include <sodium.h>

#include <stdexcept>

namespace haven::crypto {

std::vector<std::uint8_t> aead_seal(byte_view key, byte_view nonce, byte_view ad, byte_view plaintext) {
  if (key.size() != aead_key_size || nonce.size() != aead_nonce_size)
    throw std::invalid_argument("aead_seal: key or nonce of the wrong size");
  std::vector<std::uint8_t> out(plaintext.size() + aead_tag_size);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &written, plaintext.data(), plaintext.size(),
                                             ad.data(), ad.size(), nullptr, nonce.data(), key.data());
  out.resize(static_cast<std::size_t>(written));
  return out;
}

result<std::vector<std::uint8_t>> aead_open(byte_view key, byte_view nonce, byte_view ad,
                                            byte_view ciphertext) {
  if (key.size() != aead_key_size || nonce.size() != aead_nonce_size) return fail(errc::invalid_argument);
  if (ciphertext.size() < aead_tag_size) return fail(errc::malformed_message);
  std::vector<std::uint8_t> out(ciphertext.size() - aead_tag_size);
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &written, nullptr, ciphertext.data(),
                                                 ciphertext.size(), ad.data(), ad.size(), nonce.data(),
                                                 key.data()) != 0)
    return fail(errc::decryption_failed);
  out.resize(static_cast<std::size_t>(written));
  return out;
}

}  // namespace haven::crypto
