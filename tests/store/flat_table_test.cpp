#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <unordered_map>

#include "flat_table.hpp"

namespace {

using haven::store::flat_table;

// Few homes for many keys: long runs that wrap around the end of the
// slots, where deletion by backward shift has its corner cases.
struct crowded_hash {
  std::size_t operator()(std::uint32_t k) const noexcept {
    return (((k % 7) * 0x9e3779b97f4a7c15) >> 7) | 0x3f;
  }
};

}  // namespace

TEST_CASE("flat_table agrees with std::unordered_map through random inserts and erases",
          "[store][flat_table]") {
  flat_table<std::uint32_t, std::uint64_t, crowded_hash> table;
  std::unordered_map<std::uint32_t, std::uint64_t> model;
  std::mt19937 random(7);
  for (int round = 0; round < 20; ++round) {
    const auto keys = 1U + random() % 400;  // a key range the table must grow and shrink in
    for (int op = 0; op < 4000; ++op) {
      const auto key = static_cast<std::uint32_t>(random() % keys);
      if (random() % 3 == 0) {
        table.erase(key);
        model.erase(key);
      } else {
        const std::uint64_t value = random();
        table.insert_or_assign(key, value);
        model.insert_or_assign(key, value);
      }
      const auto* found = table.find(key);
      REQUIRE((found != nullptr) == model.contains(key));
      if (found) REQUIRE(*found == model.at(key));
    }
    REQUIRE(table.size() == model.size());
    for (std::uint32_t key = 0; key < keys; ++key) {
      const auto* found = table.find(key);
      REQUIRE((found != nullptr) == model.contains(key));
      if (found) REQUIRE(*found == model.at(key));
    }
    if (round % 5 == 4) {
      table.clear();
      model.clear();
      REQUIRE(table.size() == 0);
      REQUIRE(table.find(0) == nullptr);
    }
  }
}

TEST_CASE("flat_table as a set: insert, contains, erase, clear", "[store][flat_table]") {
  struct no_value {};
  flat_table<std::uint32_t, no_value, crowded_hash> set;
  REQUIRE_FALSE(set.contains(1));
  set.erase(1);  // absent: nothing happens
  for (std::uint32_t k = 0; k < 1000; ++k) set.insert(k);
  set.insert(5);
  REQUIRE(set.size() == 1000);
  for (std::uint32_t k = 0; k < 1000; k += 2) set.erase(k);
  REQUIRE(set.size() == 500);
  for (std::uint32_t k = 0; k < 1000; ++k) REQUIRE(set.contains(k) == (k % 2 == 1));
  set.clear();
  REQUIRE(set.size() == 0);
  for (std::uint32_t k = 0; k < 1000; ++k) REQUIRE_FALSE(set.contains(k));
}
