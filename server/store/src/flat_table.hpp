#pragma once
// An open-addressing hash table (linear probing, deletion by backward
// shift) for the writer's caches of queue entries. Its slots sit in one
// array, so a lookup touches one or two cache lines where a node-based
// std::unordered_map walks a chain of separately allocated nodes, and an
// insert allocates nothing until the table grows. clear() is O(1), for
// the set the writer empties after every batch.
//
// Keys and values are trivially copyable; pointers into it last until the
// next insert or erase.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace haven::store {

template <typename Key, typename Value, typename Hash>
class flat_table {
  static_assert(std::is_trivially_copyable_v<Key> && std::is_trivially_copyable_v<Value>);

 public:
  [[nodiscard]] std::size_t size() const { return size_; }

  Value* find(const Key& key) {
    if (size_ == 0) return nullptr;
    const auto hash = Hash()(key);
    for (auto i = home(hash);; i = next(i)) {
      auto& s = slots_[i];
      if (!live(s)) return nullptr;
      if (s.hash == hash && s.key == key) return &s.value;
    }
  }
  [[nodiscard]] bool contains(const Key& key) { return find(key) != nullptr; }

  void insert_or_assign(const Key& key, const Value& value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // at most 3/4 full
    const auto hash = Hash()(key);
    for (auto i = home(hash);; i = next(i)) {
      auto& s = slots_[i];
      if (!live(s)) {
        s = {hash, key, generation_, value};
        ++size_;
        return;
      }
      if (s.hash == hash && s.key == key) {
        s.value = value;
        return;
      }
    }
  }
  // For a table used as a set.
  void insert(const Key& key) { insert_or_assign(key, Value{}); }

  void erase(const Key& key) {
    if (size_ == 0) return;
    const auto hash = Hash()(key);
    auto hole = home(hash);
    for (;; hole = next(hole)) {
      if (!live(slots_[hole])) return;
      if (slots_[hole].hash == hash && slots_[hole].key == key) break;
    }
    // Moves back each later slot of the run whose home is at or before
    // the hole, so that no lookup meets an empty slot before its key.
    for (auto i = next(hole); live(slots_[i]); i = next(i)) {
      const auto h = home(slots_[i].hash);
      const bool movable = hole <= i ? (h <= hole || h > i) : (h <= hole && h > i);
      if (movable) {
        slots_[hole] = slots_[i];
        hole = i;
      }
    }
    slots_[hole].generation = 0;
    --size_;
  }

  // Keeps the slots: a slot of an earlier generation is empty.
  void clear() {
    if (++generation_ == 0) {
      for (auto& s : slots_) s.generation = 0;
      generation_ = 1;
    }
    size_ = 0;
  }

 private:
  // A slot keeps its key's hash, so that a probe compares keys only when
  // the hashes agree and a move needs no hashing.
  struct slot {
    std::size_t hash;
    Key key;
    std::uint32_t generation;  // live if the table's current one
    Value value;
  };

  [[nodiscard]] bool live(const slot& s) const { return s.generation == generation_; }
  [[nodiscard]] std::size_t home(std::size_t hash) const { return hash & (slots_.size() - 1); }
  [[nodiscard]] std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void grow() {
    std::vector<slot> old(std::max<std::size_t>(64, slots_.size() * 2));
    old.swap(slots_);
    const auto old_generation = std::exchange(generation_, 1);
    // Keys are distinct and hashes kept: each goes to its run's first free slot.
    for (const auto& s : old) {
      if (s.generation != old_generation) continue;
      auto i = home(s.hash);
      while (live(slots_[i])) i = next(i);
      slots_[i] = {s.hash, s.key, generation_, s.value};
    }
  }

  std::vector<slot> slots_;  // a power of two of them
  std::uint32_t generation_ = 1;
  std::size_t size_ = 0;
};

}  // namespace haven::store
