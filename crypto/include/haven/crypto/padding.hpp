#pragma once
// Size buckets (docs/PROTOCOL.md, "Padding"). Everything the relay can see
// the length of (sealed envelopes, group messages, vaults) is padded with
// ISO/IEC 7816-4 padding (sodium_pad: 0x80 then zeros) to one of:
//   256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 bytes,
//   then the next multiple of 65536, up to max_padded_size (1 MiB).
// Padding always adds at least one byte, so n bytes go to the smallest
// bucket >= n + 1.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "haven/crypto/errors.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto {

inline constexpr std::size_t min_bucket = 256;
inline constexpr std::size_t large_bucket_step = 65536;
inline constexpr std::size_t max_padded_size = 1024 * 1024;
inline constexpr std::size_t max_unpadded_size = max_padded_size - 1;

// The padded size for `length` bytes; 0 when length > max_unpadded_size.
[[nodiscard]] std::size_t padded_size(std::size_t length) noexcept;

// Errors: too_large when data.size() > max_unpadded_size.
[[nodiscard]] result<std::vector<std::uint8_t>> pad(byte_view data);

// Errors: bad_padding when `padded` is not a bucket size or the padding is
// not well formed.
[[nodiscard]] result<std::vector<std::uint8_t>> unpad(byte_view padded);

}  // namespace haven::crypto
