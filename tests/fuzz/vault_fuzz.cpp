// The vault parser (crypto::read_vault_header, crypto::open_vault) with
// keys derived once at start-up: Argon2id never runs per input, so no
// input can cost seconds or a gigabyte here. Its limits are checked
// instead: a header the parser accepts is within [2, 10] passes and
// [64 MiB, 1 GiB].
//
// Input: a mode byte, then
//   0: a SealedVault;
//   1: contents that this target seals and opens again (round trip).

#include <algorithm>
#include <cstdlib>

#include "fixtures.hpp"

namespace {

using namespace haven;

const crypto::vault_keys* keys = nullptr;

bool within_limits(const crypto::vault_parameters& p) {
  return p.opslimit >= crypto::vault_min_opslimit && p.opslimit <= crypto::vault_max_opslimit &&
         p.memlimit >= crypto::vault_min_memlimit && p.memlimit <= crypto::vault_max_memlimit;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  keys = new crypto::vault_keys(fuzz::make_vault_keys());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const crypto::byte_view input(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    if (auto header = crypto::read_vault_header(input); header && !within_limits(header->parameters)) std::abort();
    (void)crypto::open_vault(*keys, input);
    return 0;
  }
  auto sealed = crypto::seal_vault(*keys, input, fuzz::fixed_random(0x51));
  if (!sealed) return 0;
  auto opened = crypto::open_vault(*keys, *sealed);
  if (!opened || !std::ranges::equal(opened->view(), input)) std::abort();
  return 0;
}
