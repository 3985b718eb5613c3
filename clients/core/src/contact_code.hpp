#pragma once
// Contact codes: how one user gives another the means to write to her.
//
//   bytes = version (1, = 1) || mailbox id (16) || identity signing key (32)
//           || identity DH key (32) || its signature (64) || access key (32)
//           || checksum (4: first bytes of BLAKE2b-256 of all before)
//   code  = base64url of bytes, no padding (242 characters, one line)
//
// The checksum catches copy-and-paste damage; the identity signature is
// verified when the code is read.

#include <string>
#include <string_view>

#include "haven/client/errors.hpp"
#include "wire.pb.h"

namespace haven::client {

struct contact_code_fields {
  std::string mailbox_id;
  wire::IdentityKeys identity;
  std::string access_key;
};

[[nodiscard]] std::string encode_contact_code(const contact_code_fields& fields);
// Errors: bad_contact_code (wrong length, characters, checksum, version or
// identity signature).
[[nodiscard]] result<contact_code_fields> decode_contact_code(std::string_view code);

}  // namespace haven::client
