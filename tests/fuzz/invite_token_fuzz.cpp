// The relay's invite-token normaliser (server::normalise_invite_token).
// Oracle: an accepted token normalises to 24 characters of the Crockford
// alphabet, and normalising that again changes nothing.

#include <cstdlib>
#include <string_view>

#include "haven/server/invite_token.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto token = haven::server::normalise_invite_token({reinterpret_cast<const char*>(data), size});
  if (!token) return 0;
  if (token->size() != 24 || token->find_first_not_of(alphabet) != std::string::npos) std::abort();
  if (haven::server::normalise_invite_token(*token) != token) std::abort();
  return 0;
}
