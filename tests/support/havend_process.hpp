#pragma once
// Starts a real havend on a loopback port of its own with its own data
// directory, and runs `havend admin ...` against that directory.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace haven::test {

struct command_result {
  int exit_code = -1;
  std::string out;
};

// A whole file's bytes; empty when it cannot be read.
inline std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The last `count` lines of `text`.
inline std::string last_lines(const std::string& text, std::size_t count) {
  std::vector<std::string_view> lines;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = std::min(text.find('\n', at), text.size());
    lines.emplace_back(text.data() + at, end - at);
    at = end + 1;
  }
  std::string out;
  for (auto i = lines.size() - std::min(count, lines.size()); i < lines.size(); ++i)
    out.append(lines[i]).push_back('\n');
  return out;
}

// Forks and runs `argv` with stdout on `out_fd`, stderr appended to
// `err_file`, and `env` ("NAME=value") added to this process's environment.
// Tests fork while their client threads run, so the child makes only
// async-signal-safe calls before exec, as POSIX asks; the pipes and the log
// are close-on-exec so no other child inherits them.
inline pid_t spawn(const std::vector<std::string>& argv, int out_fd,
                   const std::filesystem::path& err_file,
                   const std::vector<std::string>& env = {}) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  const auto overridden = [&](std::string_view entry) {
    return std::ranges::any_of(env, [&](const std::string& e) {
      return entry.substr(0, entry.find('=') + 1) == e.substr(0, e.find('=') + 1);
    });
  };
  for (char** e = environ; *e != nullptr; ++e)
    if (!overridden(*e)) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    if (err >= 0) dup2(err, STDERR_FILENO);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  if (err >= 0) close(err);
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

// Runs a program with arguments; captures stdout, stderr goes to `err_file`.
inline command_result run_command(const std::vector<std::string>& argv,
                                  const std::filesystem::path& err_file = "/dev/null") {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = spawn(argv, pipe_fds[1], err_file);
  close(pipe_fds[1]);
  command_result r;
  char buf[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A loopback port for one havend's whole life, restarts included. It lies
// below the kernel's ephemeral range, which every outgoing connection draws
// from, and a lock file per port keeps the tests' other havends off it: with
// an ephemeral port, about one restart in 14,000 found it taken.
class port_lease {
 public:
  port_lease() {
    const auto dir = std::filesystem::temp_directory_path() / "haven-test-ports";
    std::filesystem::create_directories(dir);
    unsigned ephemeral_low = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
    const unsigned low = ephemeral_low > 11024 ? ephemeral_low - 10000 : 1024;
    const unsigned count = ephemeral_low > low ? ephemeral_low - low : 10000;
    std::mt19937 rng(std::random_device{}());
    for (int tries = 0; tries < 1000; ++tries) {
      const auto port = static_cast<unsigned short>(low + rng() % count);
      const auto lock = dir / std::to_string(port);
      const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        port_ = port;
        fd_ = fd;
        return;
      }
      if (fd >= 0) close(fd);
    }
    throw std::runtime_error("no free loopback port for havend");
  }
  ~port_lease() { close(fd_); }
  port_lease(const port_lease&) = delete;
  port_lease& operator=(const port_lease&) = delete;

  [[nodiscard]] unsigned short port() const { return port_; }

 private:
  unsigned short port_ = 0;
  int fd_ = -1;
};

class havend_process {
 public:
  // `data_dir` is kept across restarts; `extra` are more flags.
  explicit havend_process(std::filesystem::path data_dir, std::vector<std::string> extra = {})
      : data_dir_(std::move(data_dir)), extra_(std::move(extra)) {
    log_file_ = data_dir_.string() + ".log";
  }
  ~havend_process() {
    // A test that fails by throwing (a REQUIRE, or an error of its own)
    // shows what havend said: CI keeps no temp directory.
    if (std::uncaught_exceptions() > 0)
      std::fprintf(stderr, "--- havend's log, last lines ---\n%s--- end of havend's log ---\n",
                   last_lines(log(), 30).c_str());
    kill_now();
  }
  havend_process(const havend_process&) = delete;
  havend_process& operator=(const havend_process&) = delete;

  static std::string binary() { return HAVEN_HAVEND_PATH; }

  // Runs `havend admin ARGS` on the data directory (server must be stopped).
  command_result admin(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{binary(), "--data-dir", data_dir_.string(), "admin"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, log_file_);
  }

  // Makes an organisation (once) and returns a fresh invite token.
  std::string invite(const std::string& role = "survivor") {
    if (!org_made_) {
      if (admin({"create-org", "Test Service"}).exit_code != 0)
        throw std::runtime_error("create-org failed");
      org_made_ = true;
    }
    auto r = admin({"invite", "Test Service", "--role", role});
    if (r.exit_code != 0 || r.out.size() < 24) throw std::runtime_error("invite failed");
    return r.out.substr(0, r.out.find('\n'));
  }

  // Starts havend and waits for its "listening" line; returns the port.
  // A restart comes back on the same port, so clients can reconnect.
  // `env` ("NAME=value") is added to this start's environment only.
  unsigned short start(const std::vector<std::string>& env = {}) {
    if (!port_) {
      // Another program may hold a port no test has locked: try a few.
      for (int tries = 1;; ++tries) {
        port_.emplace();
        try {
          return start_on_port(env);
        } catch (const std::exception& e) {
          if (tries == 5 || !std::string_view(e.what()).contains("Address already in use")) throw;
        }
        port_.reset();
      }
    }
    return start_on_port(env);
  }

  // SIGTERM and wait; returns the exit status (0 for a clean stop).
  int stop() { return signal_and_wait(SIGTERM); }
  // SIGKILL, as a crash would.
  int kill_now() { return signal_and_wait(SIGKILL); }
  // Waits up to `timeout` for havend to exit by itself; its exit status.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }

  [[nodiscard]] unsigned short port() const { return port_ ? port_->port() : 0; }
  [[nodiscard]] const std::filesystem::path& data_dir() const { return data_dir_; }
  [[nodiscard]] const std::string& log_file() const { return log_file_; }
  [[nodiscard]] std::string log() const { return read_text(log_file_); }
  // Waits up to `timeout` for `text` in the log: a line havend writes after
  // the client has already seen the event (a close) may come a moment later.
  [[nodiscard]] bool log_shows(std::string_view text,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (log().find(text) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  [[nodiscard]] bool running() const { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Resident memory, in KiB.
  [[nodiscard]] long rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }

 private:
  unsigned short start_on_port(const std::vector<std::string>& env) {
    std::vector<std::string> argv{binary(), "--port", std::to_string(port_->port()),
                                  "--data-dir", data_dir_.string()};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = spawn(argv, pipe_fds[1], log_file_, env);
    close(pipe_fds[1]);
    std::string line;
    char c;
    while (read(pipe_fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(pipe_fds[0]);
    if (!line.starts_with("havend listening on ")) {
      const int status = signal_and_wait(SIGKILL);
      throw std::runtime_error("havend did not start (exit status " + std::to_string(status) +
                               "); its log ends:\n" + last_lines(log(), 10));
    }
    return port_->port();
  }

  int signal_and_wait(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::filesystem::path data_dir_;
  std::vector<std::string> extra_;
  std::string log_file_;
  pid_t pid_ = -1;
  std::optional<port_lease> port_;
  bool org_made_ = false;
};

}  // namespace haven::test
