// Disk full: havend's data directory on a small tmpfs. Once space runs out,
// sends are refused with ERROR_STORAGE_FULL, nothing stored is lost or
// corrupted, and sends work again as soon as space returns.

#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

namespace {

// A tmpfs of `size` mounted at `at` for the test's lifetime (needs root,
// which the CI machine has).
class small_filesystem {
 public:
  small_filesystem(const std::filesystem::path& at, const std::string& size) : at_(at) {
    std::filesystem::create_directories(at_);
    const auto options = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", at_.c_str(), "tmpfs", 0, options.c_str()) != 0)
      error_ = std::strerror(errno);
  }
  ~small_filesystem() {
    if (error_.empty()) ::umount2(at_.c_str(), MNT_DETACH);
  }
  small_filesystem(const small_filesystem&) = delete;
  small_filesystem& operator=(const small_filesystem&) = delete;

  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::uint64_t free_bytes() const {
    struct statvfs s{};
    ::statvfs(at_.c_str(), &s);
    return std::uint64_t{s.f_bavail} * s.f_frsize;
  }

 private:
  std::filesystem::path at_;
  std::string error_;
};

// Fills all but `leave` bytes of the filesystem with one file.
void write_ballast(const std::filesystem::path& file, std::uint64_t bytes) {
  std::ofstream out(file, std::ios::binary);
  const std::string chunk(1 << 20, 'b');
  for (std::uint64_t written = 0; written < bytes && out; written += chunk.size())
    out.write(chunk.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(chunk.size(), bytes - written)));
}

}  // namespace

TEST_CASE("a full disk refuses sends with a clear error, loses nothing, and recovers", "[disk]") {
  temp_dir dir("haven-diskfull");
  small_filesystem fs(dir.path() / "small", "64m");
  if (!fs.error().empty()) {
    // Only an unprivileged run may go without; as root the mount must work.
    REQUIRE(::geteuid() != 0);
    WARN("HAVEN-SKIP: the disk-full test needs root to mount a tmpfs (" << fs.error() << ")");
    return;
  }
  std::ofstream(dir.path() / "c.toml")
      << "[limits]\n"
         "logins_per_address = { per_second = 1000, burst = 1000 }\n"
         "sends_per_mailbox = { per_second = 100000, burst = 100000 }\n"
         "[store]\nmax_queue_per_device = 1000000\n";
  // The data directory is the mount itself, so havend's log stays outside.
  havend_process havend(dir.path() / "small", {"--config", (dir.path() / "c.toml").string()});
  const auto recipient_invite = havend.invite();
  const auto sender_invite = havend.invite();
  havend.start();

  test_device recipient, sender;
  {
    ws_client c(havend.port());
    REQUIRE(recipient.register_on(c, recipient_invite).has_registered());
  }
  ws_client c(havend.port());
  REQUIRE(sender.register_on(c, sender_invite).has_registered());

  // Leave a few MiB, then send 16 KiB envelopes until the disk is full.
  const auto ballast = dir.path() / "small" / "ballast";
  write_ballast(ballast, fs.free_bytes() - 6 * 1024 * 1024);
  std::map<std::string, std::string> acked;  // envelope id -> payload
  int refused = 0;
  int other_errors = 0;
  for (int i = 0; i < 2000 && refused < 5; ++i) {
    const auto id = random_string(16);
    const auto payload = id + std::string(16 * 1024, static_cast<char>('a' + i % 26));
    const auto reply = c.request(test_device::send_frame(recipient, payload, id), 10s);
    if (reply.has_sent()) {
      REQUIRE(refused == 0);  // no success between refusals while the disk is full
      acked.emplace(id, payload);
    } else if (reply.has_error() && reply.error().code() == wire::ERROR_STORAGE_FULL) {
      ++refused;
      CHECK(reply.error().message().find("full") != std::string::npos);
    } else {
      INFO(reply.ShortDebugString());
      ++other_errors;
    }
  }
  WARN("disk full after " << acked.size() << " acknowledged sends of 16 KiB");
  CHECK(other_errors == 0);
  REQUIRE(refused == 5);
  REQUIRE(acked.size() > 10);

  // Still alive and answering on the same connection and on a new one.
  CHECK(c.request(test_device::ping_frame()).has_pong());
  ws_client again(havend.port());  // replaces `c`: one connection per device
  CHECK(sender.login_on(again).has_authenticated());

  // Space returns: sends work again once RocksDB's recovery sees the free
  // space (it polls; havend resumes the store on the next write).
  std::filesystem::remove(ballast);
  const auto freed = std::chrono::steady_clock::now();
  int after = 0, still_full = 0;
  while (after < 20 && std::chrono::steady_clock::now() - freed < 60s) {
    const auto id = random_string(16);
    const auto payload = "after " + id;
    const auto reply = again.request(test_device::send_frame(recipient, payload, id), 10s);
    if (reply.has_sent()) {
      acked.emplace(id, payload);
      ++after;
    } else {
      REQUIRE(after == 0);  // once recovered, it stays recovered
      REQUIRE(reply.error().code() == wire::ERROR_STORAGE_FULL);
      ++still_full;
      std::this_thread::sleep_for(100ms);
    }
  }
  WARN("sends accepted again "
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - freed).count()
       << " s after space returned (" << still_full << " refused meanwhile)");
  CHECK(after == 20);

  // Nothing stored is lost or corrupted, across a crash and restart too.
  REQUIRE(havend.kill_now() == 128 + SIGKILL);
  havend.start();
  ws_client r(havend.port());
  REQUIRE(recipient.login_on(r).has_authenticated());
  std::map<std::string, int> seen;
  for (const auto& e : test_device::take_queue(r)) {
    ++seen[e.envelope_id()];
    const auto it = acked.find(e.envelope_id());
    if (it != acked.end()) CHECK(e.sealed() == it->second);
  }
  std::size_t lost = 0, duplicated = 0;
  for (const auto& [id, payload] : acked) lost += seen.count(id) == 0 ? 1 : 0;
  for (const auto& [id, n] : seen) duplicated += n > 1 ? 1 : 0;
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(seen.size() <= acked.size() + 5);  // at most the refused ones, never more
}
