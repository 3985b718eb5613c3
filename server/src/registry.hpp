#pragma once
// Which session serves which device, and every live session (for shutdown).
// Holds weak pointers only: a session's lifetime is its own I/O.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "haven/store/store.hpp"

namespace haven::server {

class session;  // websocket_session.hpp

class session_registry {
 public:
  void add(const std::shared_ptr<session>& s) {
    std::lock_guard lock(mutex_);
    all_[s.get()] = s;
  }

  // Removes `s` and its device binding (if the binding is still `s`).
  void remove(session* s, const std::string& device_key) {
    std::lock_guard lock(mutex_);
    all_.erase(s);
    if (device_key.empty()) return;
    auto it = devices_.find(device_key);
    if (it != devices_.end() && (it->second.expired() || it->second.lock().get() == s))
      devices_.erase(it);
  }

  // Binds the device to `s`; returns the session it replaces, if any.
  std::shared_ptr<session> bind(const std::string& device_key, const std::shared_ptr<session>& s) {
    std::lock_guard lock(mutex_);
    auto& slot = devices_[device_key];
    auto previous = slot.lock();
    slot = s;
    return previous;
  }

  std::shared_ptr<session> find(const std::string& device_key) {
    std::lock_guard lock(mutex_);
    auto it = devices_.find(device_key);
    return it == devices_.end() ? nullptr : it->second.lock();
  }

  std::vector<std::shared_ptr<session>> all() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<session>> out;
    for (auto& [_, weak] : all_)
      if (auto s = weak.lock()) out.push_back(std::move(s));
    return out;
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return all_.size();
  }

  static std::string key(const store::device_address& d) {
    std::string k(reinterpret_cast<const char*>(d.mailbox.data()), d.mailbox.size());
    for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>(d.device >> shift));
    return k;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<session*, std::weak_ptr<session>> all_;
  std::unordered_map<std::string, std::weak_ptr<session>> devices_;
};

}  // namespace haven::server
