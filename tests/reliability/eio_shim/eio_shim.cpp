// Preloaded into havend by wal_io_error_test.cpp: once the file named by
// HAVEN_EIO_TRIGGER exists, writes and syncs to RocksDB's write-ahead log
// files (NNNNNN.log; its info log is LOG) fail with EIO, as a failing
// disk's would. Everything else is passed through.

#include <dlfcn.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

bool failing(int fd) {
  const char* trigger = std::getenv("HAVEN_EIO_TRIGGER");
  if (trigger == nullptr || access(trigger, F_OK) != 0) return false;
  char link[64];
  char path[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const auto n = readlink(link, path, sizeof path);
  if (n <= 0) return false;
  auto name = std::string_view(path, static_cast<std::size_t>(n));
  name.remove_prefix(name.rfind('/') + 1);
  if (!name.ends_with(".log")) return false;
  name.remove_suffix(4);
  return !name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos;
}

template <typename F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* data, size_t size) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  if (failing(fd)) return errno = EIO, -1;
  return next(fd, data, size);
}

ssize_t pwrite(int fd, const void* data, size_t size, off_t offset) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  if (failing(fd)) return errno = EIO, -1;
  return next(fd, data, size, offset);
}

ssize_t pwrite64(int fd, const void* data, size_t size, off_t offset) {
  return pwrite(fd, data, size, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  static const auto next = real<ssize_t (*)(int, const struct iovec*, int)>("writev");
  if (failing(fd)) return errno = EIO, -1;
  return next(fd, iov, count);
}

int fdatasync(int fd) {
  static const auto next = real<int (*)(int)>("fdatasync");
  if (failing(fd)) return errno = EIO, -1;
  return next(fd);
}

int fsync(int fd) {
  static const auto next = real<int (*)(int)>("fsync");
  if (failing(fd)) return errno = EIO, -1;
  return next(fd);
}

}  // extern "C"
