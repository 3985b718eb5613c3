#pragma once
// Injected randomness: production code draws from the OS CSPRNG; tests and
// vector generators pass a deterministic source so outputs are reproducible.

#include <cstdint>
#include <functional>
#include <span>

namespace haven::crypto {

// Fills its argument with random bytes.
using random_source = std::function<void(std::span<std::uint8_t>)>;

// The operating system's CSPRNG (libsodium randombytes_buf).
[[nodiscard]] random_source system_random();

// A deterministic stream (ChaCha20 keystream of `seed`), for tests and test
// vectors only: never for real keys.
[[nodiscard]] random_source deterministic_random(std::span<const std::uint8_t, 32> seed);

}  // namespace haven::crypto
