#include "info_log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>

namespace haven::store {
namespace {

// Then the file becomes LOG.old.<micros>; RocksDB deletes all but the
// newest keep_log_file_num of those.
constexpr std::size_t k_max_file_bytes = 1 << 20;

std::uint64_t now_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// "2026-11-23T12:33:10.123456Z "
std::string timestamp() {
  const auto micros = now_micros();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const auto n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%06lluZ ",
                static_cast<unsigned long long>(micros % 1'000'000));
  return text;
}

std::string format_line(const char* format, va_list ap) {
  std::string line = timestamp();
  char text[1024];
  va_list copy;
  va_copy(copy, ap);
  const int n = std::vsnprintf(text, sizeof text, format, copy);
  va_end(copy);
  if (n < 0) return {};
  if (static_cast<std::size_t>(n) < sizeof text) {
    line.append(text, static_cast<std::size_t>(n));
  } else {  // a statistics dump runs to a few KiB
    std::vector<char> long_text(static_cast<std::size_t>(n) + 1);
    va_copy(copy, ap);
    std::vsnprintf(long_text.data(), long_text.size(), format, copy);
    va_end(copy);
    line.append(long_text.data(), static_cast<std::size_t>(n));
  }
  if (line.back() != '\n') line.push_back('\n');
  return line;
}

}  // namespace

info_log::info_log(std::shared_ptr<rocksdb::FileSystem> fs, const std::string& directory)
    : fs_(std::move(fs)), path_(directory + "/LOG"), directory_(directory) {
  std::lock_guard lock(mutex_);
  rotate();
}

info_log::~info_log() {
  if (file_) file_->Close(rocksdb::IOOptions(), nullptr);
}

void info_log::Logv(const char* format, va_list ap) {
  const auto line = format_line(format, ap);
  if (line.empty()) return;
  std::lock_guard lock(mutex_);
  if (!file_) start_file();  // it could not be made earlier: the disk may have room now
  if (file_ && size_ + line.size() > k_max_file_bytes) rotate();
  if (file_ && file_->Append(line, rocksdb::IOOptions(), nullptr).ok()) size_ += line.size();
}

size_t info_log::GetLogFileSize() const {
  std::lock_guard lock(mutex_);
  return size_;
}

void info_log::start_file() {
  size_ = 0;
  if (!fs_->NewWritableFile(path_, rocksdb::FileOptions(), &file_, nullptr).ok()) file_.reset();
}

void info_log::rotate() {
  if (file_) file_->Close(rocksdb::IOOptions(), nullptr);
  file_.reset();
  if (fs_->FileExists(path_, rocksdb::IOOptions(), nullptr).ok())
    fs_->RenameFile(path_, directory_ + "/LOG.old." + std::to_string(now_micros()),
                    rocksdb::IOOptions(), nullptr);
  start_file();
}

}  // namespace haven::store
