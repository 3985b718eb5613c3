#include <catch2/catch.hpp>

#include "haven/crypto/encoding.hpp"

using namespace haven::crypto;

TEST_CASE("base64url matches RFC 4648 and refuses what is not base64url", "[encoding]") {
  const std::pair<std::string_view, std::string_view> rfc[] = {
      {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : rfc) {
    CHECK(to_base64url(ascii(plain)) == encoded);
    auto back = from_base64url(encoded);
    REQUIRE(back.has_value());
    CHECK(std::string(back->begin(), back->end()) == plain);
  }
  const std::uint8_t url_safe[] = {0xfb, 0xff};  // "+/8" in standard base64
  CHECK(to_base64url(url_safe) == "-_8");
  CHECK_FALSE(from_base64url("Zm9v=").has_value());
  CHECK_FALSE(from_base64url("Zm+v").has_value());
  CHECK_FALSE(from_base64url("Zm9 v").has_value());
}
