#pragma once
// Private helpers: building the exact byte strings that are signed, hashed or
// bound as associated data, and moving fixed-size fields in and out of
// protobuf `bytes`.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "haven/crypto/secret_bytes.hpp"
#include "haven/crypto/verify.hpp"

namespace haven::crypto::detail {

class byte_writer {
 public:
  byte_writer& bytes(byte_view b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  byte_writer& ascii(std::string_view s) {
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  byte_writer& u8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  byte_writer& u32(std::uint32_t v) {  // big-endian
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
    return *this;
  }
  byte_writer& u64(std::uint64_t v) {  // big-endian
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
    return *this;
  }
  [[nodiscard]] const std::vector<std::uint8_t>& view() const noexcept { return out_; }
  [[nodiscard]] std::vector<std::uint8_t> take() noexcept { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

// libsodium declares some pointer arguments nonnull even for zero lengths;
// an empty span's data() may be null, so point at a dummy byte instead.
inline const std::uint8_t* nonnull(byte_view b) noexcept {
  static constexpr std::uint8_t dummy = 0;
  return b.empty() ? &dummy : b.data();
}

inline byte_view as_bytes(const std::string& s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string as_string(byte_view b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Copies a protobuf `bytes` field into a fixed array; false on a size mismatch.
template <std::size_t N>
[[nodiscard]] bool copy_exact(std::array<std::uint8_t, N>& out, const std::string& in) noexcept {
  if (in.size() != N) return false;
  for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<std::uint8_t>(in[i]);
  return true;
}

template <std::size_t N>
[[nodiscard]] bool copy_exact(secret_array<N>& out, const std::string& in) noexcept {
  if (in.size() != N) return false;
  for (std::size_t i = 0; i < N; ++i) out.data()[i] = static_cast<std::uint8_t>(in[i]);
  return true;
}

// Best-effort wipe of a std::string that held secret bytes (protobuf fields).
inline void wipe(std::string& s) noexcept {
  secure_wipe(s.data(), s.size());
  s.clear();
}

}  // namespace haven::crypto::detail
