#include "haven/crypto/padding.hpp"

#include <sodium.h>

#include <algorithm>

namespace haven::crypto {

std::size_t padded_size(std::size_t length) noexcept {
  if (length > max_unpadded_size) return 0;
  const std::size_t need = length + 1;
  if (need > large_bucket_step) return (need + large_bucket_step - 1) / large_bucket_step * large_bucket_step;
  std::size_t bucket = min_bucket;
  while (bucket < need) bucket *= 2;
  return bucket;
}

result<std::vector<std::uint8_t>> pad(byte_view data) {
  const std::size_t size = padded_size(data.size());
  if (size == 0) return fail(errc::too_large);
  std::vector<std::uint8_t> out(size);
  std::copy(data.begin(), data.end(), out.begin());
  std::size_t written = 0;
  // Block size = the bucket, so sodium_pad fills exactly to the bucket.
  if (sodium_pad(&written, out.data(), data.size(), size, out.size()) != 0 || written != size)
    return fail(errc::too_large);
  return out;
}

result<std::vector<std::uint8_t>> unpad(byte_view padded) {
  // padded_size(b - 1) == b exactly when b is a bucket.
  if (padded.empty() || padded_size(padded.size() - 1) != padded.size()) return fail(errc::bad_padding);
  std::size_t length = 0;
  if (sodium_unpad(&length, padded.data(), padded.size(), padded.size()) != 0) return fail(errc::bad_padding);
  return std::vector<std::uint8_t>(padded.begin(), padded.begin() + static_cast<std::ptrdiff_t>(length));
}

}  // namespace haven::crypto
