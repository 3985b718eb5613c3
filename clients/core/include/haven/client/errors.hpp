#pragma once
// The client library's errors: one enum, registered as a std::error_code
// category ("haven.client"), with messages written for the person at the
// keyboard.

#include <expected>
#include <system_error>

#include "wire.pb.h"

namespace haven::client {

enum class errc {
  no_profile = 1,      // nothing at the profile path (or it was erased)
  profile_exists,      // init over an existing profile
  profile_in_use,      // another haven command holds the profile
  wrong_passphrase,    // the vault does not open with this passphrase
  corrupt_profile,     // the vault opened but its contents do not parse
  unknown_contact,     // no contact by that name
  contact_exists,      // a contact by that name or identity exists
  bad_contact_code,    // the code is mistyped or not a Haven contact code
  no_access_key,       // we only received from them; add their contact code to reply
  identity_changed,    // the server offered keys that do not match the contact code
  server_unreachable,  // could not connect, or the connection broke
  timeout,             // the server did not answer in time
  invite_refused,      // unknown, used or expired invite
  access_denied,       // the recipient's access key was refused
  rate_limited,        // the server asks to slow down
  server_full,         // the server or the recipient's queue is full
  server_error,        // any other refusal by the server
  protocol_error,      // the server sent something we cannot use
  decrypt_failed,      // an envelope that did not open or decrypt
  io_error,            // the profile could not be written
  tls_failed,          // wss://: certificate not trusted for the host, or no TLS 1.3
};

[[nodiscard]] const std::error_category& category() noexcept;
[[nodiscard]] std::error_code make_error_code(errc e) noexcept;

template <typename T>
using result = std::expected<T, std::error_code>;

// The client error for a server's refusal.
[[nodiscard]] std::error_code from_wire(wire::ErrorCode code) noexcept;

}  // namespace haven::client

template <>
struct std::is_error_code_enum<haven::client::errc> : std::true_type {};
