// The ratchet message parser: Double Ratchet decrypt on sessions set up once
// at start-up (fixtures.hpp); each input starts from a fresh copy.
//
// Input: a mode byte, then
//   0: a RatchetMessage for Bob;  1: a RatchetMessage for Alice;
//   2: a PrekeyMessage for Bob;   3: a serialized SessionState.
// Oracles: a refused message leaves the session exactly as it was; a
// message that decrypts never decrypts a second time.

#include <algorithm>
#include <cstdlib>

#include "fixtures.hpp"

namespace {

using namespace haven;

struct snapshot {
  crypto::secret_bytes alice;
  crypto::secret_bytes bob;
};
const snapshot* start = nullptr;

bool same(const crypto::secret_bytes& a, const crypto::secret_bytes& b) {
  return std::ranges::equal(a.view(), b.view());
}

void decrypt(const crypto::secret_bytes& state, crypto::message_type type, crypto::byte_view message) {
  auto s = crypto::session::deserialize(state.view()).value();
  const auto before = s.serialize();
  const crypto::encrypted_message m{type, {message.begin(), message.end()}};
  const auto random = fuzz::fixed_random(0x11);
  if (!s.decrypt(m, random)) {
    if (!same(s.serialize(), before)) std::abort();  // changed by a refused message
    return;
  }
  if (s.decrypt(m, random)) std::abort();  // a replay was accepted
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto f = fuzz::make_ratchet_fixture();
  start = new snapshot{f.alice_session.serialize(), f.bob_session.serialize()};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const crypto::byte_view input(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: decrypt(start->bob, crypto::message_type::ratchet, input); break;
    case 1: decrypt(start->alice, crypto::message_type::ratchet, input); break;
    case 2:
      (void)crypto::parse_prekey_message(input);
      decrypt(start->bob, crypto::message_type::prekey, input);
      break;
    default:
      if (auto s = crypto::session::deserialize(input)) {
        (void)s->encrypt(fuzz::bytes("x"));
        if (!crypto::session::deserialize(s->serialize().view())) std::abort();  // no round trip
      }
      break;
  }
  return 0;
}
