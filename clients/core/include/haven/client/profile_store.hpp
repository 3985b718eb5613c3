#pragma once
// A profile directory: one file, profile.vault, the client's whole state
// sealed with keys derived from the passphrase (Argon2id, then
// XChaCha20-Poly1305; docs/PROTOCOL.md "Key vault"). Nothing readable is
// kept on disk. While open, the directory is locked against other haven
// commands.

#include <filesystem>
#include <string_view>

#include "client.pb.h"
#include "haven/client/errors.hpp"
#include "haven/crypto/vault.hpp"

namespace haven::client {

class profile_store {
 public:
  // Creates the directory and the vault. Errors: profile_exists, io_error.
  [[nodiscard]] static result<profile_store> create(const std::filesystem::path& dir,
                                                    std::string_view passphrase, Profile initial);
  // Errors: no_profile, profile_in_use, wrong_passphrase, corrupt_profile.
  [[nodiscard]] static result<profile_store> open(const std::filesystem::path& dir,
                                                  std::string_view passphrase);
  // Removes every file of the profile at once, without asking. Succeeds
  // when there was none.
  static void erase(const std::filesystem::path& dir) noexcept;

  profile_store(profile_store&&) noexcept;
  profile_store& operator=(profile_store&&) noexcept;
  ~profile_store();

  [[nodiscard]] Profile& profile() noexcept { return profile_; }
  [[nodiscard]] const Profile& profile() const noexcept { return profile_; }

  // Seals the current state and replaces the file atomically (write,
  // fsync, rename, fsync the directory). Errors: io_error.
  [[nodiscard]] result<void> save();

 private:
  profile_store(std::filesystem::path dir, int lock_fd, crypto::vault_keys keys, Profile p);
  std::filesystem::path dir_;
  int lock_fd_ = -1;
  crypto::vault_keys keys_;
  Profile profile_;
};

}  // namespace haven::client
