#pragma once
// Secret key material: move-only, in sodium_malloc'd memory (guard pages,
// mlock where the system allows), wiped when destroyed.

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

}  // namespace haven::crypto
