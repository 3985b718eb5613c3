// The client's contact-code parser (clients/core/src/contact_code.cpp,
// compiled in read-only: the whole client library, with its TLS relay
// connection, would triple the fuzz build's time for these 30 lines).
//
// Input: a mode byte, then
//   0: the code as typed or pasted;
//   1: the 177 bytes a code carries before its checksum: this target
//      appends the checksum and encodes it, so the fuzzer gets past the
//      checksum to the identity checks.
// Oracle: what decodes encodes to a code that decodes to the same fields.

#include <cstdlib>

#include "contact_code.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/verify.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace haven;
  if (size == 0) return 0;
  std::string code(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 1) {
    const auto checksum = crypto::hash256(crypto::bytes_of(code));
    code.append(reinterpret_cast<const char*>(checksum.data()), 4);
    code = crypto::to_base64url(crypto::bytes_of(code));
  }
  const auto fields = client::decode_contact_code(code);
  if (!fields) return 0;
  const auto again = client::decode_contact_code(client::encode_contact_code(*fields));
  if (!again || again->mailbox_id != fields->mailbox_id || again->access_key != fields->access_key ||
      again->identity.SerializeAsString() != fields->identity.SerializeAsString())
    std::abort();
  return 0;
}
