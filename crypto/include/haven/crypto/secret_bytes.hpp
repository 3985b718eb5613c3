#pragma once
// Secret key material: move-only, in sodium_malloc'd memory (guard pages,
// mlock where the system allows), wiped when destroyed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace haven::crypto {

class secret_bytes {
 public:
  secret_bytes() noexcept = default;
  // Zero-filled secret of `size` bytes. Throws std::bad_alloc on failure.
  explicit secret_bytes(std::size_t size);
  // Copies `bytes` into secure memory; the caller wipes its own copy.
  static secret_bytes copy_of(std::span<const std::uint8_t> bytes);

  secret_bytes(secret_bytes&& other) noexcept;
  secret_bytes& operator=(secret_bytes&& other) noexcept;
  secret_bytes(const secret_bytes&) = delete;
  secret_bytes& operator=(const secret_bytes&) = delete;
  ~secret_bytes();

  [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<const std::uint8_t> view() const noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<std::uint8_t> mutable_view() noexcept { return {data_, size_}; }

  // Constant-time comparison.
  [[nodiscard]] bool operator==(const secret_bytes& other) const noexcept;

 private:
  void release() noexcept;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Overwrites `size` bytes at `data` with zeros in a way the compiler keeps
// (sodium_memzero).
void secure_wipe(void* data, std::size_t size) noexcept;

// A fixed-size secret held by value (ordinary memory), wiped when destroyed.
// For short-lived keys (message keys, DH outputs) and keys kept in bulk
// (skipped message keys), where a guarded sodium_malloc page per key would
// cost more than it protects. Copies are explicit values and each copy wipes
// itself.
template <std::size_t N>
class secret_array {
 public:
  secret_array() noexcept = default;
  explicit secret_array(std::span<const std::uint8_t, N> bytes) noexcept {
    for (std::size_t i = 0; i < N; ++i) bytes_[i] = bytes[i];
  }
  secret_array(const secret_array&) noexcept = default;
  secret_array& operator=(const secret_array&) noexcept = default;
  ~secret_array() { secure_wipe(bytes_.data(), N); }

  static constexpr std::size_t size() noexcept { return N; }
  [[nodiscard]] std::uint8_t* data() noexcept { return bytes_.data(); }
  [[nodiscard]] const std::uint8_t* data() const noexcept { return bytes_.data(); }
  [[nodiscard]] std::span<const std::uint8_t, N> view() const noexcept { return bytes_; }
  [[nodiscard]] std::span<std::uint8_t, N> mutable_view() noexcept { return bytes_; }

 private:
  std::array<std::uint8_t, N> bytes_{};
};

}  // namespace haven::crypto
