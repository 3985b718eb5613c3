#include <catch2/catch.hpp>

#include "haven/crypto/padding.hpp"
#include "test_support.hpp"

using namespace haven::crypto;

TEST_CASE("padding goes to the documented buckets and back", "[padding]") {
  CHECK(padded_size(0) == 256);
  CHECK(padded_size(255) == 256);
  CHECK(padded_size(256) == 512);
  CHECK(padded_size(1023) == 1024);
  CHECK(padded_size(1024) == 2048);
  CHECK(padded_size(65535) == 65536);
  CHECK(padded_size(65536) == 131072);
  CHECK(padded_size(max_unpadded_size) == max_padded_size);
  CHECK(padded_size(max_unpadded_size + 1) == 0);
  for (std::size_t n : {0u, 1u, 255u, 256u, 3000u, 70000u}) {
    std::vector<std::uint8_t> data(n, 0x80);  // 0x80 bytes look like padding markers
    auto p = pad(data).value();
    CHECK(p.size() == padded_size(n));
    CHECK(unpad(p).value() == data);
  }
}

TEST_CASE("oversized input and malformed padding are refused", "[padding]") {
  CHECK(pad(std::vector<std::uint8_t>(max_padded_size, 1)).error() == errc::too_large);
  CHECK(unpad(std::vector<std::uint8_t>(256, 0)).error() == errc::bad_padding);
  CHECK(unpad(std::vector<std::uint8_t>(300, 0)).error() == errc::bad_padding);
  CHECK(unpad({}).error() == errc::bad_padding);
}
