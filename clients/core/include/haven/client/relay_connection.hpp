#pragma once
// One WebSocket connection to havend, used synchronously: requests get
// their reply, frames the server pushes meanwhile are kept in order for
// next(). A timeout never breaks the connection; the read stays pending.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string_view>

#include "haven/client/errors.hpp"
#include "wire.pb.h"

namespace haven::client {

struct connection_options {
  // For connecting: TCP, TLS and WebSocket handshakes and the challenge.
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  // wss:// only: a PEM file of the CA certificate(s) to trust for the
  // relay's certificate instead of the system's trust store.
  std::filesystem::path ca_file;
};

class relay_connection {
 public:
  // Connects to a `ws://host[:port][/path]` or `wss://host[:port][/path]`
  // URL (port 80 or 443, path /v1/ws by default) and reads the server's
  // challenge. wss:// is TLS 1.3 only, and the server's certificate must
  // chain to a trusted CA and name `host` (DNS name or IP address).
  // Errors: server_unreachable, timeout, protocol_error, tls_failed (the
  // certificate is not trusted for `host`, no TLS 1.3, or the CA file
  // cannot be read).
  [[nodiscard]] static result<std::unique_ptr<relay_connection>> connect(
      std::string_view url, const connection_options& options = {});

  virtual ~relay_connection() = default;

  [[nodiscard]] virtual const wire::AuthChallenge& challenge() const noexcept = 0;

  // Sends `frame` with a fresh request id and waits for its reply. A server
  // Error becomes the matching errc. Errors also: server_unreachable, timeout.
  [[nodiscard]] virtual result<wire::ServerFrame> request(
      wire::ClientFrame frame, std::chrono::milliseconds timeout = std::chrono::seconds(15)) = 0;

  // The next frame the server sent on its own (an Envelope, QueueDrained),
  // oldest first. Errors: timeout (nothing came; still connected),
  // server_unreachable (the connection ended).
  [[nodiscard]] virtual result<wire::ServerFrame> next(std::chrono::milliseconds timeout) = 0;

  // Sends without waiting for the reply (acks); replies are dropped.
  virtual result<void> send_only(wire::ClientFrame frame) = 0;

  // Closes politely; safe to call twice.
  virtual void close() noexcept = 0;
};

}  // namespace haven::client
