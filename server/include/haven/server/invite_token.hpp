#pragma once
// Invite tokens: 120 random bits written as 24 Crockford base32 characters
// in groups of four ("7K2M-9QXD-..."), easy to read out over the phone.
// The server stores only a hash of the normalised token.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace haven::server {

// A fresh token from the system CSPRNG.
[[nodiscard]] std::string make_invite_token();

// Upper-cases, drops dashes and spaces, maps I/L to 1 and O to 0; nullopt
// if anything else is not a base32 character or the length is wrong.
[[nodiscard]] std::optional<std::string> normalise_invite_token(std::string_view token);

// BLAKE2b-256 of the normalised token: the key it is stored under.
[[nodiscard]] std::array<std::uint8_t, 32> invite_token_hash(std::string_view normalised);

}  // namespace haven::server
