#pragma once
// The roaming key vault (docs/PROTOCOL.md, "Key vault").
//
// master = Argon2id v1.3 (crypto_pwhash) of the passphrase's UTF-8 bytes with
// a 16-byte salt and the recorded opslimit/memlimit, 32 bytes;
//   k_auth = HKDF(salt = none, ikm = master, "haven-vault-auth-v1", 32)
//   k_enc  = HKDF(salt = none, ikm = master, "haven-vault-enc-v1", 32)
// The server stores BLAKE2b-256(k_auth) to check log-ins and the sealed vault;
// k_enc never leaves the device. The vault is XChaCha20-Poly1305 of the
// padded contents under k_enc with a random nonce; the KDF parameters and
// salt are bound as associated data, so they cannot be swapped.
//
// Limits: opslimit in [2, 10] and memlimit in [64 MiB, 1 GiB]. The default
// is libsodium's INTERACTIVE pair (2, 64 MiB); raise it by resealing with new
// parameters. The lower bounds also stop a malicious server from handing a
// client weak parameters to make its k_auth cheap to brute-force.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

inline constexpr std::uint32_t vault_algorithm_argon2id13 = 2;  // crypto_pwhash_ALG_ARGON2ID13
inline constexpr std::uint64_t vault_min_opslimit = 2;
inline constexpr std::uint64_t vault_max_opslimit = 10;
inline constexpr std::uint64_t vault_min_memlimit = 64ull << 20;
inline constexpr std::uint64_t vault_max_memlimit = 1ull << 30;
inline constexpr std::size_t vault_salt_size = 16;

struct vault_parameters {
  std::uint64_t opslimit = vault_min_opslimit;  // crypto_pwhash_OPSLIMIT_INTERACTIVE
  std::uint64_t memlimit = vault_min_memlimit;  // crypto_pwhash_MEMLIMIT_INTERACTIVE
  [[nodiscard]] bool operator==(const vault_parameters&) const = default;
};

// What a client needs before it can derive keys: stored in clear with the
// vault (and handed out by the server before log-in).
struct vault_header {
  std::array<std::uint8_t, vault_salt_size> salt{};
  vault_parameters parameters;
};

// A fresh header: draws 16 bytes of salt. Precondition: parameters within
// the limits (else std::invalid_argument).
[[nodiscard]] vault_header new_vault_header(const random_source& random, vault_parameters parameters = {});

struct vault_keys {
  secret_bytes auth_key;  // 32 bytes: proves the passphrase to the server
  secret_bytes enc_key;   // 32 bytes: seals the vault; never sent
  vault_header header;
};

// Runs Argon2id (slow on purpose: about 0.1-0.5 s at the default limits).
// Errors: weak_parameters (outside the limits), out_of_memory.
[[nodiscard]] result<vault_keys> derive_vault_keys(std::string_view passphrase, const vault_header& header);

// BLAKE2b-256(k_auth): what the server stores and compares.
[[nodiscard]] std::array<std::uint8_t, 32> vault_auth_verifier(const vault_keys& keys);

// Seals `contents` (a serialized client state); draws 24 bytes (nonce).
// Errors: too_large (over the padding limit).
[[nodiscard]] result<std::vector<std::uint8_t>> seal_vault(const vault_keys& keys, byte_view contents,
                                                           const random_source& random);

// Reads the clear header of a sealed vault. Errors: malformed_message,
// unsupported_version, weak_parameters.
[[nodiscard]] result<vault_header> read_vault_header(byte_view sealed);

// Opens a vault with keys derived from its header. Errors: as
// read_vault_header, plus wrong_passphrase (wrong keys or tampered vault),
// bad_padding.
[[nodiscard]] result<secret_bytes> open_vault(const vault_keys& keys, byte_view sealed);

// read_vault_header + derive_vault_keys + open_vault.
[[nodiscard]] result<secret_bytes> open_vault(std::string_view passphrase, byte_view sealed);

}  // namespace haven::crypto
