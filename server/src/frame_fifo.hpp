#pragma once
// A FIFO of outgoing frames that allocates nothing until the first push
// (libstdc++'s std::deque allocates 576 bytes when constructed), so an idle
// connection costs only its pointers.

#include <cstddef>
#include <vector>

#include "haven/store/store.hpp"

namespace haven::server {

// A reply, or one pushed envelope; envelopes waiting side by side are
// written together as one Envelopes frame.
struct outgoing_frame {
  store::push_frame bytes;
  bool envelope = false;

  [[nodiscard]] std::size_t size() const noexcept { return bytes.size(); }
};

class frame_fifo {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == frames_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return frames_.size() - head_; }
  // The i-th oldest frame.
  [[nodiscard]] const outgoing_frame& operator[](std::size_t i) const noexcept {
    return frames_[head_ + i];
  }

  void push_back(outgoing_frame f) { frames_.push_back(std::move(f)); }

  // Drops the `count` oldest frames.
  void pop_front(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) frames_[head_++] = {};
    // Reclaim the popped slots once they are half the vector, so a queue
    // that never empties does not grow.
    if (head_ == frames_.size() || head_ * 2 >= frames_.capacity()) {
      frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  void clear() noexcept {
    frames_.clear();
    head_ = 0;
  }

 private:
  std::vector<outgoing_frame> frames_;
  std::size_t head_ = 0;
};

}  // namespace haven::server
