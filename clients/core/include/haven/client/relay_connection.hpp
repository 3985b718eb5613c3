#pragma once
// One WebSocket connection to havend, used synchronously: requests get
// their reply, frames the server pushes meanwhile are kept in order for
// next(). A timeout never breaks the connection; the read stays pending.

#include <chrono>
#include <memory>
#include <string_view>

#include "haven/client/errors.hpp"
#include "wire.pb.h"

namespace haven::client {

class relay_connection {
 public:
  // Connects to a `ws://host:port[/path]` URL (path defaults to /v1/ws) and
  // reads the server's challenge. Errors: server_unreachable, timeout,
  // protocol_error.
  [[nodiscard]] static result<std::unique_ptr<relay_connection>> connect(
      std::string_view url, std::chrono::milliseconds timeout = std::chrono::seconds(10));

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
