#pragma once
// A Haven user on one device: registration, contacts, sending and receiving
// sealed, end-to-end encrypted messages through havend. Every change of
// state is saved to the encrypted profile before the server learns of it:
// the ratchet before a send, the plaintext and ratchet before an ack.

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "haven/client/errors.hpp"
#include "haven/client/profile_store.hpp"
#include "haven/client/relay_connection.hpp"

namespace haven::client {

struct message {
  std::string contact;
  bool outgoing = false;
  std::string text;
  std::int64_t sent_at = 0;      // sender's clock
  std::int64_t received_at = 0;  // ours; 0 for outgoing
};

struct contact_summary {
  std::string name;
  bool can_send = false;  // we hold their contact code (access key)
};

class client {
 public:
  // Registers a new account with `invite` on `server_url` (ws:// or
  // wss://host[:port]) and creates the profile in `dir`. `options` serve
  // every later connection of this client too. Errors: profile_exists,
  // invite_refused, server_unreachable, tls_failed, and the store's.
  [[nodiscard]] static result<client> init(const std::filesystem::path& dir,
                                           std::string_view passphrase, std::string server_url,
                                           std::string_view invite, std::string name,
                                           connection_options options = {});
  // Errors: no_profile, profile_in_use, wrong_passphrase, corrupt_profile.
  [[nodiscard]] static result<client> open(const std::filesystem::path& dir,
                                           std::string_view passphrase,
                                           connection_options options = {});

  // This user's contact code: one line with the mailbox id, the identity
  // keys and the access key. Whoever holds it can write to this user.
  [[nodiscard]] std::string contact_code() const;

  // Errors: bad_contact_code, contact_exists.
  [[nodiscard]] result<void> add_contact(std::string name, std::string_view code);
  [[nodiscard]] std::vector<contact_summary> contacts() const;

  // Encrypts and sends `text`; returns once the server holds it durably.
  // Errors: unknown_contact, no_access_key, identity_changed, server errors.
  [[nodiscard]] result<void> send(std::string_view contact, std::string_view text);

  // Collects every waiting message, stores it, acks it; duplicates are
  // dropped. Errors: server errors, io_error.
  [[nodiscard]] result<std::vector<message>> fetch();

  // Stays connected and calls `on_message` for each message once stored;
  // reconnects with back-off. Returns when `on_message` returns false or
  // `until` passes.
  [[nodiscard]] result<void> listen(const std::function<bool(const message&)>& on_message,
                                    std::chrono::steady_clock::time_point until);

  [[nodiscard]] result<std::vector<message>> history(std::string_view contact) const;

  // The 60-digit safety number of this user and the contact, grouped.
  [[nodiscard]] result<std::string> safety_number(std::string_view contact) const;

  [[nodiscard]] const Profile& profile() const noexcept { return store_.profile(); }

 private:
  client(profile_store store, connection_options options)
      : store_(std::move(store)), options_(std::move(options)) {}
  profile_store store_;
  connection_options options_;
  struct impl;
  friend struct impl;
};

}  // namespace haven::client
