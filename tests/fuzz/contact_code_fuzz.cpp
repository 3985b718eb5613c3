// The client's contact-code parser, through its public API
// (client::add_contact on a profile made at start-up in a temp dir).
//
// Input: a mode byte, then
//   0: the code as typed or pasted;
//   1: the 177 bytes a code carries before its checksum: this target
//      appends the checksum and encodes it, so the fuzzer gets past the
//      checksum to the identity checks.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "haven/client/client.hpp"
#include "haven/crypto/encoding.hpp"
#include "haven/crypto/verify.hpp"

namespace {

using namespace haven;

std::filesystem::path* dir = nullptr;
client::client* me = nullptr;

void shut_down() {
  delete me;
  std::error_code ignored;
  std::filesystem::remove_all(*dir, ignored);
  delete dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dir = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                  ("haven-fuzz-profile-" + std::to_string(getpid())));
  std::filesystem::remove_all(*dir);
  constexpr std::string_view passphrase = "fuzz";
  if (!client::profile_store::create(*dir, passphrase, {})) std::abort();
  me = new client::client(client::client::open(*dir, passphrase).value());
  std::atexit(shut_down);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string code(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 1) {
    const auto checksum = crypto::hash256(crypto::bytes_of(code));
    code.append(reinterpret_cast<const char*>(checksum.data()), 4);
    code = crypto::to_base64url(crypto::bytes_of(code));
  }
  (void)me->add_contact("fuzz", code);
  return 0;
}
