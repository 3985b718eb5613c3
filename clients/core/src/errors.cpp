#include "haven/client/errors.hpp"

#include <string>

namespace haven::client {
namespace {

class client_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "haven.client"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::no_profile: return "no profile here (create one with: haven init)";
      case errc::profile_exists: return "a profile already exists here";
      case errc::profile_in_use: return "the profile is in use by another haven command";
      case errc::wrong_passphrase: return "wrong passphrase";
      case errc::corrupt_profile: return "the profile is damaged and cannot be read";
      case errc::unknown_contact: return "no contact by that name (see: haven contact list)";
      case errc::contact_exists: return "that contact already exists";
      case errc::bad_contact_code: return "that is not a valid contact code (check for typos)";
      case errc::no_access_key:
        return "you cannot write to this contact yet: add their contact code";
      case errc::identity_changed:
        return "the server offered keys that do not match this contact's code: not sent";
      case errc::server_unreachable: return "cannot reach the server";
      case errc::timeout: return "the server did not answer in time";
      case errc::invite_refused: return "the invite was refused (unknown, used or expired)";
      case errc::access_denied: return "the server refused delivery (the contact code may be out of date)";
      case errc::rate_limited: return "the server asks to slow down; try again shortly";
      case errc::server_full: return "the server cannot store more right now; try again later";
      case errc::server_error: return "the server refused the request";
      case errc::protocol_error: return "the server sent something unexpected";
      case errc::decrypt_failed: return "a message could not be decrypted";
      case errc::io_error: return "the profile could not be written";
      case errc::tls_failed:
        return "no secure connection: the server's certificate is not trusted for this address "
               "(a private CA needs --ca-file), or the server does not offer TLS 1.3";
    }
    return "unknown client error";
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const client_category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

std::error_code from_wire(wire::ErrorCode code) noexcept {
  switch (code) {
    case wire::ERROR_INVALID_INVITE: return errc::invite_refused;
    case wire::ERROR_ACCESS_DENIED: return errc::access_denied;
    case wire::ERROR_RATE_LIMITED: return errc::rate_limited;
    case wire::ERROR_STORAGE_FULL:
    case wire::ERROR_QUEUE_FULL:
    case wire::ERROR_UNAVAILABLE: return errc::server_full;
    case wire::ERROR_MALFORMED_FRAME:
    case wire::ERROR_UNKNOWN_REQUEST: return errc::protocol_error;
    default: return errc::server_error;
  }
}

}  // namespace haven::client
