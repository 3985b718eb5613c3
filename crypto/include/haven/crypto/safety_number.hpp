#pragma once
// Safety numbers (docs/PROTOCOL.md, "Safety numbers"): 60 decimal digits that
// two people compare in person; the same on both sides.
//
// For each identity: d = SHA-512("haven-safety-number-v1" || signing_key ||
// dh_key), then 5200 times d = SHA-512(d || signing_key || dh_key). The first
// 30 bytes, as six 5-byte big-endian numbers each taken mod 100000 and
// written with 5 digits, give that identity's 30 digits. The safety number
// is the two 30-digit strings in ascending order, concatenated.

#include <string>
#include <string_view>

#include "haven/crypto/identity.hpp"

namespace haven::crypto {

inline constexpr int safety_number_iterations = 5200;

// The 30 digits of one identity.
[[nodiscard]] std::string fingerprint_digits(const public_identity& identity);

// The 60 digits for a pair of identities; symmetric in its arguments.
[[nodiscard]] std::string safety_number(const public_identity& a, const public_identity& b);

// For display: 12 groups of 5 digits separated by single spaces.
[[nodiscard]] std::string format_safety_number(std::string_view digits);

}  // namespace haven::crypto
