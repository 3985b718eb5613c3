#include "haven/crypto/secret_bytes.hpp"

#include <sodium.h>

#include <algorithm>
#include <new>
#include <utility>

#include "haven/crypto/verify.hpp"

namespace haven::crypto {

void secure_wipe(void* data, std::size_t size) noexcept {
  if (data != nullptr && size != 0) sodium_memzero(data, size);
}

secret_bytes::secret_bytes(std::size_t size) : size_(size) {
  if (size == 0) return;
  ensure_sodium();
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  sodium_memzero(data_, size);
}

secret_bytes secret_bytes::copy_of(std::span<const std::uint8_t> bytes) {
  secret_bytes s(bytes.size());
  std::copy(bytes.begin(), bytes.end(), s.data_);
  return s;
}

secret_bytes::secret_bytes(secret_bytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

secret_bytes& secret_bytes::operator=(secret_bytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

secret_bytes::~secret_bytes() { release(); }

void secret_bytes::release() noexcept {
  // sodium_free wipes the region before unmapping it.
  if (data_ != nullptr) sodium_free(data_);
  data_ = nullptr;
  size_ = 0;
}

bool secret_bytes::operator==(const secret_bytes& other) const noexcept {
  return equal_constant_time(view(), other.view());
}

}  // namespace haven::crypto
