#include "haven/client/profile_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "haven/crypto/random.hpp"
#include "haven/crypto/secret_bytes.hpp"

namespace haven::client {
namespace {

constexpr const char* k_vault_file = "profile.vault";
constexpr const char* k_lock_file = ".lock";

result<int> lock(const std::filesystem::path& dir) {
  const int fd = ::open((dir / k_lock_file).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(make_error_code(errc::io_error));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return std::unexpected(make_error_code(errc::profile_in_use));
  }
  return fd;
}

bool write_all(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const auto n = ::write(fd, data, size);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

profile_store::profile_store(std::filesystem::path dir, int lock_fd, crypto::vault_keys keys,
                             Profile p)
    : dir_(std::move(dir)), lock_fd_(lock_fd), keys_(std::move(keys)), profile_(std::move(p)) {}

profile_store::profile_store(profile_store&& o) noexcept
    : dir_(std::move(o.dir_)),
      lock_fd_(std::exchange(o.lock_fd_, -1)),
      keys_(std::move(o.keys_)),
      profile_(std::move(o.profile_)) {}

profile_store& profile_store::operator=(profile_store&& o) noexcept {
  if (this != &o) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    dir_ = std::move(o.dir_);
    lock_fd_ = std::exchange(o.lock_fd_, -1);
    keys_ = std::move(o.keys_);
    profile_ = std::move(o.profile_);
  }
  return *this;
}

profile_store::~profile_store() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

result<profile_store> profile_store::create(const std::filesystem::path& dir,
                                            std::string_view passphrase, Profile initial) {
  std::error_code ec;
  if (std::filesystem::exists(dir / k_vault_file, ec))
    return std::unexpected(make_error_code(errc::profile_exists));
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(make_error_code(errc::io_error));
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  auto fd = lock(dir);
  if (!fd) return std::unexpected(fd.error());
  auto keys = crypto::derive_vault_keys(passphrase, crypto::new_vault_header(crypto::system_random()));
  if (!keys) {
    ::close(*fd);
    return std::unexpected(make_error_code(errc::io_error));
  }
  profile_store store(dir, *fd, std::move(*keys), std::move(initial));
  if (auto saved = store.save(); !saved) return std::unexpected(saved.error());
  return store;
}

result<profile_store> profile_store::open(const std::filesystem::path& dir,
                                          std::string_view passphrase) {
  std::ifstream in(dir / k_vault_file, std::ios::binary);
  if (!in) return std::unexpected(make_error_code(errc::no_profile));
  auto fd = lock(dir);
  if (!fd) return std::unexpected(fd.error());
  const std::vector<std::uint8_t> sealed((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  const auto fail = [&](errc e) {
    ::close(*fd);
    return std::unexpected(make_error_code(e));
  };
  auto header = crypto::read_vault_header(sealed);
  if (!header) return fail(errc::corrupt_profile);
  auto keys = crypto::derive_vault_keys(passphrase, *header);
  if (!keys) return fail(errc::corrupt_profile);
  auto contents = crypto::open_vault(*keys, sealed);
  if (!contents) return fail(errc::wrong_passphrase);
  Profile p;
  if (!p.ParseFromArray(contents->data(), static_cast<int>(contents->size())))
    return fail(errc::corrupt_profile);
  return profile_store(dir, *fd, std::move(*keys), std::move(p));
}

void profile_store::erase(const std::filesystem::path& dir) noexcept {
  std::error_code ec;
  // The vault is ciphertext; removing it is enough, and it is immediate.
  std::filesystem::remove(dir / k_vault_file, ec);
  std::filesystem::remove_all(dir, ec);
}

result<void> profile_store::save() {
  // Serialise into wiped memory, so no plaintext copy of the state lingers.
  crypto::secret_bytes plain(profile_.ByteSizeLong());
  if (!profile_.SerializeToArray(plain.data(), static_cast<int>(plain.size())))
    return std::unexpected(make_error_code(errc::io_error));
  auto sealed = crypto::seal_vault(keys_, plain.view(), crypto::system_random());
  if (!sealed) return std::unexpected(make_error_code(errc::io_error));

  const auto final_path = dir_ / k_vault_file;
  const auto temp_path = dir_ / ".profile.vault.new";
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(make_error_code(errc::io_error));
  const bool written = write_all(fd, sealed->data(), sealed->size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(temp_path.c_str(), final_path.c_str()) != 0)
    return std::unexpected(make_error_code(errc::io_error));
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

}  // namespace haven::client
