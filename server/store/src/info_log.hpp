#pragma once
// RocksDB's info log (LOG in the data directory) that drops a line it
// cannot write. RocksDB's own file logger keeps the error of a failed
// write, and Debian's librocksdb is built with assertions: on a full disk
// the next line aborted havend instead of letting it refuse sends.

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdarg>
#include <memory>
#include <mutex>
#include <string>

namespace haven::store {

class info_log final : public rocksdb::Logger {
 public:
  // Moves an existing LOG aside, as RocksDB does, so each run starts a file.
  info_log(std::shared_ptr<rocksdb::FileSystem> fs, const std::string& directory);
  ~info_log() override;
  info_log(const info_log&) = delete;
  info_log& operator=(const info_log&) = delete;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  size_t GetLogFileSize() const override;

 private:
  void start_file();   // under mutex_
  void rotate();       // under mutex_

  std::shared_ptr<rocksdb::FileSystem> fs_;
  std::string path_;
  std::string directory_;
  mutable std::mutex mutex_;
  std::unique_ptr<rocksdb::FSWritableFile> file_;  // null when it could not be made
  std::size_t size_ = 0;
};

}  // namespace haven::store
