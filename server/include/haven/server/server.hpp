#pragma once
// havend's network side: one listener serving HTTP (/healthz, the browser
// client's files) and the WebSocket relay (/v1/ws) on the same port, over
// TLS 1.3 when config's [tls] files are set, else plain.

#include <cstdint>
#include <memory>
#include <string>

#include "haven/server/config.hpp"
#include "haven/store/store.hpp"

namespace haven::server {

class server {
 public:
  // `store` must outlive the server. Throws std::runtime_error when the
  // [tls] files are set but unusable (see make_tls_context; start-up).
  server(const config& cfg, store::store& store);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens; returns "address:port" as bound (port 0 picks one).
  // Warns (log) when serving plain HTTP on a non-loopback address.
  // Throws std::system_error when the address cannot be bound (start-up).
  std::string listen();

  // Serves on cfg.threads threads until stop() and the graceful drain are
  // done: no new connections, every taken request answered, queued writes
  // flushed, connections closed with "going away".
  void run();

  // Thread-safe; returns at once.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace haven::server
