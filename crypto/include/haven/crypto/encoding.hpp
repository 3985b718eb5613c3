#pragma once
// Hex encoding for test vectors, logs of public values and fingerprints.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "haven/crypto/verify.hpp"

namespace haven::crypto {

// Lower-case hex of `bytes`.
[[nodiscard]] std::string to_hex(byte_view bytes);

// The bytes of `hex` (upper or lower case, no separators); nullopt when the
// text is not an even number of hex digits.
[[nodiscard]] std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex);

// Base64url without padding (RFC 4648 section 5), for one-line codes.
[[nodiscard]] std::string to_base64url(byte_view bytes);
// nullopt when `text` is not base64url without padding.
[[nodiscard]] std::optional<std::vector<std::uint8_t>> from_base64url(std::string_view text);

// The bytes of an ASCII string (labels), without a terminating NUL.
[[nodiscard]] inline byte_view ascii(std::string_view text) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace haven::crypto
