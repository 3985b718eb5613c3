// The sender-key (group) message parser: group_receiver::decrypt on a copy
// of a receiver set up once from a real distribution message.
//
// Input: a mode byte, then
//   0: a SenderKeyMessage as received;
//   1: a SenderKeyMessage that this target re-signs with the chain's key
//      (when it parses), so the fuzzer gets past the signature check;
//   2: a SenderKeyDistribution (group_receiver::from_distribution);
//   3: a serialized SenderKeyState (group_receiver::deserialize).
// Oracle: a refused message leaves the receiver exactly as it was.

#include <algorithm>
#include <cstdlib>

#include "e2e.pb.h"
#include "fixtures.hpp"
#include "haven/crypto/kdf_labels.hpp"

namespace {

using namespace haven;

const crypto::secret_bytes* receiver_state = nullptr;
const crypto::signing_key* chain_key = nullptr;

// Signs as group_sender::encrypt does: "haven-sender-key-v1" ||
// distribution id || chain id || iteration || ciphertext.
std::string resign(crypto::byte_view input) {
  e2e::SenderKeyMessage m;
  if (!m.ParseFromArray(input.data(), static_cast<int>(input.size()))) return fuzz::text(input);
  std::string signed_bytes(crypto::labels::sender_key);
  signed_bytes += m.distribution_id();
  for (auto v : {m.chain_id(), m.iteration()})
    for (int shift = 24; shift >= 0; shift -= 8) signed_bytes += static_cast<char>(v >> shift);
  signed_bytes += m.ciphertext();
  m.set_signature(fuzz::text(chain_key->sign(fuzz::bytes(signed_bytes))));
  return m.SerializeAsString();
}

void decrypt(crypto::byte_view message) {
  auto r = crypto::group_receiver::deserialize(receiver_state->view()).value();
  const auto before = r.serialize();
  if (!r.decrypt(message) && !std::ranges::equal(r.serialize().view(), before.view())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto sender = fuzz::make_group_sender();
  auto receiver = crypto::group_receiver::from_distribution(sender.distribution_message().view()).value();
  receiver_state = new crypto::secret_bytes(receiver.serialize());
  chain_key = new crypto::signing_key(fuzz::group_signing_key());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const crypto::byte_view input(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      (void)crypto::peek_sender_key_message(input);
      decrypt(input);
      break;
    case 1: decrypt(fuzz::bytes(resign(input))); break;
    case 2: (void)crypto::group_receiver::from_distribution(input); break;
    default:
      if (auto r = crypto::group_receiver::deserialize(input)) (void)r->serialize();
      break;
  }
  return 0;
}
