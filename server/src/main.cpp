// havend: the Haven relay. `havend --help` explains every flag.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <google/protobuf/stubs/logging.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <thread>

#include "haven/crypto/verify.hpp"
#include "haven/server/config.hpp"
#include "haven/server/invite_token.hpp"
#include "haven/server/server.hpp"
#include "haven/store/store.hpp"

namespace {

using namespace haven;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<store::store> open_store(const server::config& cfg,
                                         std::function<void()> on_unrecoverable = {}) {
  store::options options;
  options.directory = cfg.data_dir;
  options.max_queue_per_device = cfg.max_queue_per_device;
  options.on_unrecoverable = std::move(on_unrecoverable);
  auto opened = store::open_rocksdb_store(options);
  if (!opened) {
    if (opened.error() == store::errc::locked)
      throw std::runtime_error("data directory " + cfg.data_dir.string() +
                               " is in use (is havend running? stop it first)");
    throw std::runtime_error("cannot open data directory " + cfg.data_dir.string() + ": " +
                             opened.error().message());
  }
  return std::move(*opened);
}

int serve(const server::config& cfg) {
  // Block the stop signals before any thread starts (RocksDB's included),
  // so only the waiter below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // If the store stops writing for good, stop as for SIGTERM (by sending
  // it to ourselves, to the waiter below) and exit 1, so the supervisor
  // restarts havend (deploy/havend.service): reopening replays the log and
  // writes again, and until then every send fails.
  std::atomic<bool> store_failed{false};
  auto store = open_store(cfg, [&store_failed] {
    spdlog::error("storage failed and RocksDB writes nothing more until restarted; stopping");
    store_failed = true;
    ::kill(::getpid(), SIGTERM);
  });
  server::server relay(cfg, *store);
  const auto address = relay.listen();
  // The first line of output, for scripts and tests (port 0 picks a port).
  std::cout << "havend listening on " << address << std::endl;
  spdlog::info("serving {} on /v1/ws and /healthz; data in {}",
               cfg.tls_cert_file.empty() ? "ws://" : "wss:// (TLS 1.3)", cfg.data_dir.string());

  // Signals are waited for on a thread of their own; the relay drains.
  std::jthread signal_waiter([&](std::stop_token) {
    int received = 0;
    sigwait(&signals, &received);
    if (!store_failed)
      spdlog::info("received {}, shutting down", received == SIGTERM ? "SIGTERM" : "SIGINT");
    relay.stop();
  });
  relay.run();
  signal_waiter.join();  // it returned once it had asked the relay to stop
  store->close();
  if (store_failed) {
    spdlog::error("stopped because storage failed; restart havend to write again");
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}

int create_org(const server::config& cfg, const std::string& name) {
  auto store = open_store(cfg);
  store::org_id id{};
  crypto::random_fill(id);
  auto org = store::wait_for<store::OrgRecord>(
      [&](auto done) { store->create_org(id, name, unix_now(), done); });
  if (!org) {
    std::cerr << "havend: cannot create organisation \"" << name << "\": "
              << org.error().message() << "\n";
    return 1;
  }
  std::cout << "created organisation \"" << name << "\"\n";
  return 0;
}

int create_invites(const server::config& cfg, const std::string& org_name,
                   const std::string& role, int count, int expires_days) {
  auto store = open_store(cfg);
  auto orgs = store->list_orgs();
  if (!orgs) throw std::runtime_error("cannot read organisations: " + orgs.error().message());
  const auto org = std::ranges::find_if(*orgs, [&](const auto& o) { return o.name() == org_name; });
  if (org == orgs->end()) {
    std::cerr << "havend: no organisation \"" << org_name
              << "\" (create it with: havend admin create-org NAME)\n";
    return 1;
  }
  store::invite details;
  std::copy_n(org->org_id().begin(), details.org.size(), details.org.begin());
  details.role = role == "caseworker" ? wire::ROLE_CASEWORKER : wire::ROLE_SURVIVOR;
  details.expires_at = expires_days > 0 ? unix_now() + expires_days * 86'400LL : 0;
  for (int i = 0; i < count; ++i) {
    const auto token = server::make_invite_token();
    auto hash = server::invite_token_hash(*server::normalise_invite_token(token));
    auto made = store::wait_for<void>(
        [&](auto done) { store->create_invite(hash, details, unix_now(), done); });
    if (!made) {
      std::cerr << "havend: cannot store the invite: " << made.error().message() << "\n";
      return 1;
    }
    std::cout << token << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  haven::crypto::ensure_sodium();
  auto logger = spdlog::stderr_color_mt("havend");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S%z %l %v");
  // libprotobuf logs every string field with invalid UTF-8 to stderr, which
  // lets anyone flood the log before logging in (found by fuzz_relay). Parse
  // failures are already answered as malformed frames.
  google::protobuf::SetLogHandler(nullptr);

  server::config cfg;
  std::string config_file;
  CLI::App app{
      "havend: the Haven relay. Stores sealed envelopes in RocksDB until their device\n"
      "collects them; never sees message content. Settings come from built-in defaults,\n"
      "then --config FILE (TOML, see deploy/havend.toml), then these flags."};
  app.set_help_all_flag("--help-all", "Show help for every subcommand too");
  app.add_option("-c,--config", config_file, "TOML config file, read before the flags")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", cfg.listen, "Address to listen on (loopback by default)")
      ->capture_default_str();
  app.add_option("-p,--port", cfg.port, "Port; 0 picks a free one, printed on the first line")
      ->capture_default_str();
  app.add_option("-d,--data-dir", cfg.data_dir, "RocksDB data directory (created if missing)")
      ->capture_default_str();
  app.add_option("--web-root", cfg.web_root, "Directory of the browser client served at /");
  app.add_option("--tls-cert", cfg.tls_cert_file,
                 "PEM certificate chain; with --tls-key the port serves HTTPS and wss:// "
                 "(TLS 1.3 only). Without both: plain, for loopback or behind a TLS proxy");
  app.add_option("--tls-key", cfg.tls_key_file,
                 "PEM private key (unencrypted) of --tls-cert; a key that does not match "
                 "stops havend at start-up");
  app.add_option("--threads", cfg.threads, "I/O threads (the store has its own writer)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--max-frame-bytes", cfg.max_frame_bytes,
                 "Largest WebSocket message accepted; bigger ones close the connection (1009)")
      ->capture_default_str();
  app.add_option("--outbound-buffer-bytes", cfg.outbound_buffer_bytes,
                 "Bytes waiting for one client (beyond one frame) before it is closed as too slow")
      ->capture_default_str();
  app.add_option("--delivery-window", cfg.delivery_window,
                 "Envelopes pushed to a device and not yet acked, at most")
      ->capture_default_str();
  app.add_option("--envelope-ttl-days", [&](const CLI::results_t& r) {
       cfg.envelope_ttl = std::chrono::hours(24 * std::stoll(r.front()));
       return true;
     }, "Days an undelivered envelope is kept (default 30)");
  app.add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("--log-addresses", cfg.log_addresses,
               "Write client IP addresses to the log (off: survivors' addresses stay out)");

  auto* admin = app.add_subcommand(
      "admin", "Administer the data directory (run while havend is stopped)");
  admin->require_subcommand(1);
  std::string org_name;
  auto* create_org_cmd = admin->add_subcommand("create-org", "Create an organisation");
  create_org_cmd->add_option("NAME", org_name, "Organisation name, unique")->required();
  std::string invite_org, role = "survivor";
  int count = 1, expires_days = 14;
  auto* invite_cmd =
      admin->add_subcommand("invite", "Print invite tokens, one a line, for an organisation");
  invite_cmd->add_option("ORG", invite_org, "Organisation name")->required();
  invite_cmd->add_option("--role", role, "Role of the account the invite creates")
      ->check(CLI::IsMember({"survivor", "caseworker"}))
      ->capture_default_str();
  invite_cmd->add_option("--count", count, "How many invites")->check(CLI::Range(1, 1000))
      ->capture_default_str();
  invite_cmd->add_option("--expires-days", expires_days, "Days until unused invites expire; 0 never")
      ->check(CLI::Range(0, 3650))
      ->capture_default_str();

  // The config file is read first so that flags override it.
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "-c" || std::string_view(argv[i]) == "--config") {
      try {
        cfg = server::load_config_file(argv[i + 1], cfg);
      } catch (const std::exception& e) {
        std::cerr << "havend: " << e.what() << "\n";
        return 2;
      }
    }
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  try {
    if (*create_org_cmd) return create_org(cfg, org_name);
    if (*invite_cmd) return create_invites(cfg, invite_org, role, count, expires_days);
    return serve(cfg);
  } catch (const std::exception& e) {
    std::cerr << "havend: " << e.what() << "\n";
    return 1;
  }
}
