#include "haven/crypto/vault.hpp"

#include <sodium.h>

#include <stdexcept>

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
using detail::copy_exact;

namespace {

bool within_limits(const vault_parameters& p) {
  return p.opslimit >= vault_min_opslimit && p.opslimit <= vault_max_opslimit &&
         p.memlimit >= vault_min_memlimit && p.memlimit <= vault_max_memlimit;
}

std::vector<std::uint8_t> vault_ad(const vault_header& h) {
  return byte_writer()
      .ascii(labels::vault)
      .u32(vault_algorithm_argon2id13)
      .u64(h.parameters.opslimit)
      .u64(h.parameters.memlimit)
      .bytes(h.salt)
      .take();
}

}  // namespace

vault_header new_vault_header(const random_source& random, vault_parameters parameters) {
  if (!within_limits(parameters)) throw std::invalid_argument("vault parameters outside the accepted limits");
  vault_header h;
  random(h.salt);
  h.parameters = parameters;
  return h;
}

result<vault_keys> derive_vault_keys(std::string_view passphrase, const vault_header& header) {
  if (!within_limits(header.parameters)) return fail(errc::weak_parameters);
  ensure_sodium();
  static_assert(crypto_pwhash_SALTBYTES == vault_salt_size);
  secret_bytes master(32);
  if (crypto_pwhash(master.data(), master.size(), passphrase.empty() ? "" : passphrase.data(), passphrase.size(), header.salt.data(),
                    header.parameters.opslimit, static_cast<std::size_t>(header.parameters.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return fail(errc::out_of_memory);
  vault_keys keys;
  keys.header = header;
  auto auth = hkdf({}, master.view(), ascii(labels::vault_auth), 32);
  auto enc = hkdf({}, master.view(), ascii(labels::vault_enc), 32);
  if (!auth || !enc) return fail(errc::invalid_argument);
  keys.auth_key = std::move(*auth);
  keys.enc_key = std::move(*enc);
  return keys;
}

std::array<std::uint8_t, 32> vault_auth_verifier(const vault_keys& keys) { return hash256(keys.auth_key.view()); }

result<std::vector<std::uint8_t>> seal_vault(const vault_keys& keys, byte_view contents, const random_source& random) {
  auto padded = pad(contents);
  if (!padded) return std::unexpected(padded.error());
  std::array<std::uint8_t, aead_nonce_size> nonce{};
  random(nonce);
  const auto ct = aead_seal(keys.enc_key.view(), nonce, vault_ad(keys.header), *padded);
  secure_wipe(padded->data(), padded->size());
  e2e::SealedVault v;
  v.set_version(1);
  v.set_algorithm(vault_algorithm_argon2id13);
  v.set_opslimit(keys.header.parameters.opslimit);
  v.set_memlimit(keys.header.parameters.memlimit);
  v.set_salt(as_string(keys.header.salt));
  v.set_nonce(as_string(nonce));
  v.set_ciphertext(as_string(ct));
  std::vector<std::uint8_t> out(v.ByteSizeLong());
  v.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

namespace {

result<vault_header> parse_header(const e2e::SealedVault& v) {
  if (v.version() != 1 || v.algorithm() != vault_algorithm_argon2id13) return fail(errc::unsupported_version);
  vault_header h;
  if (!copy_exact(h.salt, v.salt())) return fail(errc::malformed_message);
  h.parameters = {v.opslimit(), v.memlimit()};
  if (!within_limits(h.parameters)) return fail(errc::weak_parameters);
  return h;
}

}  // namespace

result<vault_header> read_vault_header(byte_view sealed) {
  e2e::SealedVault v;
  if (!v.ParseFromArray(sealed.data(), static_cast<int>(sealed.size()))) return fail(errc::malformed_message);
  return parse_header(v);
}

result<secret_bytes> open_vault(const vault_keys& keys, byte_view sealed) {
  e2e::SealedVault v;
  if (!v.ParseFromArray(sealed.data(), static_cast<int>(sealed.size()))) return fail(errc::malformed_message);
  auto header = parse_header(v);
  if (!header) return std::unexpected(header.error());
  std::array<std::uint8_t, aead_nonce_size> nonce{};
  if (!copy_exact(nonce, v.nonce())) return fail(errc::malformed_message);
  // The AD is built from the stored header: keys derived for another salt or
  // other limits fail here like a wrong passphrase.
  auto padded = aead_open(keys.enc_key.view(), nonce, vault_ad(*header), as_bytes(v.ciphertext()));
  if (!padded) return fail(errc::wrong_passphrase);
  if (!equal_constant_time(keys.header.salt, header->salt) || !(keys.header.parameters == header->parameters))
    return fail(errc::wrong_passphrase);
  auto plain = unpad(*padded);
  secure_wipe(padded->data(), padded->size());
  if (!plain) return std::unexpected(plain.error());
  auto out = secret_bytes::copy_of(*plain);
  secure_wipe(plain->data(), plain->size());
  return out;
}

result<secret_bytes> open_vault(std::string_view passphrase, byte_view sealed) {
  auto header = read_vault_header(sealed);
  if (!header) return std::unexpected(header.error());
  auto keys = derive_vault_keys(passphrase, *header);
  if (!keys) return std::unexpected(keys.error());
  return open_vault(*keys, sealed);
}

}  // namespace haven::crypto
