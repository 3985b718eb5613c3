#pragma once
// A FIFO of outgoing frames that allocates nothing until the first push
// (libstdc++'s std::deque allocates 576 bytes when constructed), so an idle
// connection costs only its pointers.

#include <cstddef>
#include <vector>

#include "haven/store/store.hpp"

namespace haven::server {

class frame_fifo {
 public:
  using frame = store::push_frame;

  [[nodiscard]] bool empty() const noexcept { return head_ == frames_.size(); }
  [[nodiscard]] const frame& front() const noexcept { return frames_[head_]; }

  void push_back(frame f) { frames_.push_back(std::move(f)); }

  void pop_front() {
    frames_[head_++] = {};
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
  std::vector<frame> frames_;
  std::size_t head_ = 0;
};

}  // namespace haven::server
