#pragma once
// A fresh directory under the system temp dir, removed with its contents
// (kept when HAVEN_KEEP_TEMP is set, to read a failed test's havend log).

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace haven::test {

class temp_dir {
 public:
  explicit temp_dir(const std::string& tag = "haven") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            (tag + "-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    if (std::getenv("HAVEN_KEEP_TEMP") != nullptr) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace haven::test
