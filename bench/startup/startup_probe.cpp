// startup_probe: how long havend takes from exec to serving, on a data
// directory filled by fill_store.
//
// Starts havend (--port 0) and times, from the fork: the "havend listening
// on" line (the store is open and the port bound), the first /healthz
// answered 200, the first log-in answered Authenticated (an account from
// --accounts), and the first queued envelope pushed to that device. Then
// stops havend with SIGTERM and times the clean exit. --runs repeats it.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <iterator>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "haven/crypto/signing.hpp"
#include "haven/crypto/verify.hpp"
#include "wire.pb.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace haven;

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

std::string unhex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

struct account {
  std::string mailbox;
  std::string seed;
};

struct timings {
  double listening_ms = 0, healthz_ms = 0, login_ms = 0, first_envelope_ms = -1, stop_ms = 0;
};

struct havend_process {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

havend_process spawn(const std::vector<std::string>& argv, const std::string& log) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(fds[1], 1);
    const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads havend's stdout until the "listening on" line; returns the port.
unsigned short wait_listening(int fd, double timeout_s) {
  std::string buffer;
  const auto until = steady::now() + std::chrono::duration<double>(timeout_s);
  while (steady::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char chunk[512];
    const auto n = read(fd, chunk, sizeof chunk);
    if (n <= 0) throw std::runtime_error("havend exited before listening");
    buffer.append(chunk, static_cast<std::size_t>(n));
    const auto nl = buffer.find('\n');
    if (nl == std::string::npos) continue;
    const auto line = buffer.substr(0, nl);
    const auto colon = line.rfind(':');
    if (!line.starts_with("havend listening on ") || colon == std::string::npos)
      throw std::runtime_error("unexpected first line from havend: " + line);
    return static_cast<unsigned short>(std::stoi(line.substr(colon + 1)));
  }
  throw std::runtime_error("havend did not print its address in time");
}

bool healthz(net::io_context& ioc, unsigned short port) {
  beast::error_code ec;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port), ec);
  if (ec) return false;
  http::request<http::empty_body> req(http::verb::get, "/healthz", 11);
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req, ec);
  if (ec) return false;
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res, ec);
  return !ec && res.result() == http::status::ok;
}

// The next frame; a Batch is taken apart into `later`.
wire::ServerFrame read_frame(websocket::stream<beast::tcp_stream>& ws,
                             std::deque<wire::ServerFrame>& later) {
  if (later.empty()) {
    beast::flat_buffer buffer;
    ws.read(buffer);
    wire::ServerFrame f;
    if (!f.ParseFromArray(buffer.cdata().data(), static_cast<int>(buffer.size())))
      throw std::runtime_error("havend sent a frame that is not a ServerFrame");
    if (!f.has_batch()) return f;
    std::ranges::move(*f.mutable_batch()->mutable_frames(), std::back_inserter(later));
  }
  auto f = std::move(later.front());
  later.pop_front();
  return f;
}

timings probe_once(const std::vector<std::string>& argv, const std::string& log,
                   const account& who, bool expect_envelope, double timeout_s) {
  timings t;
  const auto t0 = steady::now();
  auto proc = spawn(argv, log);
  try {
    const auto port = wait_listening(proc.out, timeout_s);
    t.listening_ms = ms_since(t0);
    net::io_context ioc;
    while (!healthz(ioc, port)) {
      if (ms_since(t0) > timeout_s * 1e3) throw std::runtime_error("/healthz never answered");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    t.healthz_ms = ms_since(t0);

    websocket::stream<beast::tcp_stream> ws(ioc);
    beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), port));
    ws.binary(true);
    ws.handshake("127.0.0.1", "/v1/ws");
    std::deque<wire::ServerFrame> later;
    auto challenge = read_frame(ws, later);
    if (!challenge.has_challenge()) throw std::runtime_error("no AuthChallenge first");
    const auto seed = crypto::bytes_of(who.seed);
    const auto key = crypto::signing_key::from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
    wire::ClientFrame auth;
    auth.set_request_id(1);
    auth.mutable_auth()->set_mailbox_id(who.mailbox);
    auth.mutable_auth()->set_device_id(1);
    const auto sig = key.sign(crypto::bytes_of(crypto::auth_message(
        crypto::bytes_of(challenge.challenge().server_id()),
        crypto::bytes_of(challenge.challenge().nonce()))));
    auth.mutable_auth()->set_signature(std::string(sig.begin(), sig.end()));
    const auto bytes = auth.SerializeAsString();
    ws.write(net::buffer(bytes));
    for (;;) {
      auto f = read_frame(ws, later);
      if (f.request_id() == 1) {
        if (!f.has_authenticated())
          throw std::runtime_error("log-in refused: " + f.error().message());
        t.login_ms = ms_since(t0);
        break;
      }
    }
    if (expect_envelope) {
      for (;;) {
        auto f = read_frame(ws, later);
        if (f.has_envelopes()) {
          t.first_envelope_ms = ms_since(t0);
          break;
        }
        if (f.has_queue_drained()) break;  // nothing was queued
      }
    }
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().close(ignored);
  } catch (...) {
    kill(proc.pid, SIGKILL);
    waitpid(proc.pid, nullptr, 0);
    close(proc.out);
    throw;
  }
  const auto s0 = steady::now();
  kill(proc.pid, SIGTERM);
  int status = 0;
  waitpid(proc.pid, &status, 0);
  t.stop_ms = ms_since(s0);
  close(proc.out);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("havend did not exit cleanly after SIGTERM (see " + log + ")");
  return t;
}

double median(std::vector<double> v) {
  std::ranges::sort(v);
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  crypto::ensure_sodium();
  std::string havend, config, data_dir, accounts_file, log = "/dev/null", json_out;
  int runs = 3;
  double timeout = 60;
  bool expect_envelope = true;
  CLI::App app{"startup_probe: time havend from exec to serving (listening, /healthz, log-in)"};
  app.add_option("--havend", havend, "Path of the havend binary")->required()->check(CLI::ExistingFile);
  app.add_option("--config", config, "havend config file")->check(CLI::ExistingFile);
  app.add_option("--data-dir", data_dir, "A data directory filled by fill_store")->required();
  app.add_option("--accounts", accounts_file, "fill_store's --accounts-out file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--log", log, "Append havend's stderr to this file")->capture_default_str();
  app.add_option("--runs", runs, "Starts to time")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--timeout", timeout, "Seconds one start may take")->capture_default_str();
  app.add_flag("!--no-envelope", expect_envelope, "Do not wait for the first queued envelope");
  app.add_option("--json", json_out, "Write the figures as one JSON object to FILE");
  CLI11_PARSE(app, argc, argv);

  account who;
  {
    std::ifstream in(accounts_file);
    std::string mailbox, seed;
    if (!(in >> mailbox >> seed)) {
      std::cerr << "startup_probe: no account in " << accounts_file << "\n";
      return 2;
    }
    who = {unhex(mailbox), unhex(seed)};
  }
  std::vector<std::string> args{havend};
  if (!config.empty()) args.insert(args.end(), {"--config", config});
  args.insert(args.end(), {"--port", "0", "--data-dir", data_dir});

  std::vector<timings> all;
  try {
    for (int i = 0; i < runs; ++i) {
      all.push_back(probe_once(args, log, who, expect_envelope, timeout));
      const auto& t = all.back();
      std::cerr << "startup_probe: run " << i + 1 << ": listening " << t.listening_ms
                << " ms, /healthz " << t.healthz_ms << " ms, logged in " << t.login_ms
                << " ms, first envelope " << t.first_envelope_ms << " ms; stopped in "
                << t.stop_ms << " ms\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "startup_probe: FAILED: " << e.what() << "\n";
    return 1;
  }
  nlohmann::json j;
  const auto field = [&](double timings::*m) {
    std::vector<double> v;
    for (const auto& t : all) v.push_back(t.*m);
    return v;
  };
  j["runs"] = runs;
  j["listening_ms"] = field(&timings::listening_ms);
  j["healthz_ms"] = field(&timings::healthz_ms);
  j["login_ms"] = field(&timings::login_ms);
  j["first_envelope_ms"] = field(&timings::first_envelope_ms);
  j["stop_ms"] = field(&timings::stop_ms);
  j["first_listening_ms"] = all.front().listening_ms;
  j["first_healthz_ms"] = all.front().healthz_ms;
  j["first_login_ms"] = all.front().login_ms;
  j["first_envelope_first_ms"] = all.front().first_envelope_ms;
  j["first_stop_ms"] = all.front().stop_ms;
  j["median_listening_ms"] = median(field(&timings::listening_ms));
  j["median_healthz_ms"] = median(field(&timings::healthz_ms));
  j["median_login_ms"] = median(field(&timings::login_ms));
  j["median_first_envelope_ms"] = median(field(&timings::first_envelope_ms));
  j["median_stop_ms"] = median(field(&timings::stop_ms));
  std::cout << j.dump() << "\n";
  if (!json_out.empty()) std::ofstream(json_out) << j.dump() << "\n";
  return 0;
}
