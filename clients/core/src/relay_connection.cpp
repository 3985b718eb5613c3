#include "haven/client/relay_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <map>
#include <optional>
#include <set>

namespace haven::client {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct parsed_url {
  std::string host, port, path;
};

std::optional<parsed_url> parse_url(std::string_view url) {
  constexpr std::string_view scheme = "ws://";
  if (!url.starts_with(scheme)) return std::nullopt;  // wss:// comes with native TLS
  url.remove_prefix(scheme.size());
  const auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  parsed_url out;
  out.path = slash == std::string_view::npos ? "/v1/ws" : std::string(url.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  out.host = std::string(authority.substr(0, colon));
  out.port = std::string(authority.substr(colon + 1));
  if (out.host.starts_with('[') && out.host.ends_with(']'))
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty() || out.port.empty()) return std::nullopt;
  return out;
}

class beast_connection final : public relay_connection {
 public:
  beast_connection() : ws_(ioc_) {}
  ~beast_connection() override { close(); }

  result<void> open(const parsed_url& url, std::chrono::milliseconds timeout) {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return std::unexpected(make_error_code(errc::server_unreachable));
    tcp_layer.expires_after(timeout);
    bool done = false;
    tcp_layer.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    if (!run_until(done, timeout) || ec) return std::unexpected(make_error_code(errc::server_unreachable));
    tcp_layer.socket().set_option(tcp::no_delay(true), ec);
    done = false;
    ws_.async_handshake(url.host, url.path, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    if (!run_until(done, timeout) || ec) return std::unexpected(make_error_code(errc::server_unreachable));
    tcp_layer.expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.read_message_max(64 << 20);
    ws_.binary(true);
    auto first = next(timeout);
    if (!first) return std::unexpected(first.error());
    if (!first->has_challenge()) return std::unexpected(make_error_code(errc::protocol_error));
    challenge_ = first->challenge();
    return {};
  }

  const wire::AuthChallenge& challenge() const noexcept override { return challenge_; }

  result<wire::ServerFrame> request(wire::ClientFrame frame,
                                    std::chrono::milliseconds timeout) override {
    const auto id = ++last_id_;
    frame.set_request_id(id);
    if (auto sent = write(frame); !sent) return std::unexpected(sent.error());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto it = replies_.find(id); it != replies_.end()) {
        auto reply = std::move(it->second);
        replies_.erase(it);
        if (reply.has_error()) return std::unexpected(from_wire(reply.error().code()));
        return reply;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::unexpected(make_error_code(errc::timeout));
      if (auto r = read_some(left); !r) return std::unexpected(r.error());
    }
  }

  result<wire::ServerFrame> next(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pushed_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::unexpected(make_error_code(errc::timeout));
      if (auto r = read_some(left); !r) return std::unexpected(r.error());
    }
    auto f = std::move(pushed_.front());
    pushed_.pop_front();
    return f;
  }

  result<void> send_only(wire::ClientFrame frame) override {
    frame.set_request_id(++last_id_);
    ignored_.insert(last_id_);
    return write(frame);
  }

  void close() noexcept override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    if (ws_.is_open()) {
      beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(2));
      bool done = false;
      ws_.async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
      run_until(done, std::chrono::seconds(2));
    }
    beast::get_lowest_layer(ws_).close();
  }

 private:
  // Runs the I/O until `done` or the time is up; false on time-out.
  bool run_until(const bool& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done) {
      ioc_.restart();
      if (ioc_.run_one_until(deadline) == 0 && std::chrono::steady_clock::now() >= deadline)
        return done;
    }
    return true;
  }

  result<void> write(const wire::ClientFrame& frame) {
    if (broken_) return std::unexpected(make_error_code(errc::server_unreachable));
    const auto bytes = frame.SerializeAsString();
    bool done = false;
    beast::error_code ec;
    ws_.async_write(net::buffer(bytes), [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    if (!run_until(done, std::chrono::seconds(15))) {
      // A write that cannot finish leaves the stream unusable; drop it.
      broken_ = true;
      beast::get_lowest_layer(ws_).close();
      run_until(done, std::chrono::seconds(1));
      return std::unexpected(make_error_code(errc::timeout));
    }
    if (ec) {
      broken_ = true;
      return std::unexpected(make_error_code(errc::server_unreachable));
    }
    return {};
  }

  // Waits up to `timeout` for one frame; it lands in replies_ or pushed_.
  result<void> read_some(std::chrono::milliseconds timeout) {
    if (broken_) return std::unexpected(make_error_code(errc::server_unreachable));
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
        reading_ = false;
        read_done_ = true;
        read_error_ = ec;
      });
    }
    if (!run_until(read_done_, timeout)) return {};  // still pending; no harm
    if (read_error_) {
      broken_ = true;
      return std::unexpected(make_error_code(errc::server_unreachable));
    }
    wire::ServerFrame frame;
    const bool ok = frame.ParseFromString(beast::buffers_to_string(buffer_.data()));
    buffer_.consume(buffer_.size());
    if (!ok) return std::unexpected(make_error_code(errc::protocol_error));
    if (frame.request_id() == 0) {
      pushed_.push_back(std::move(frame));
    } else if (!ignored_.erase(frame.request_id())) {
      replies_.emplace(frame.request_id(), std::move(frame));
    }
    return {};
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  wire::AuthChallenge challenge_;
  std::deque<wire::ServerFrame> pushed_;
  std::map<std::uint64_t, wire::ServerFrame> replies_;
  std::set<std::uint64_t> ignored_;
  std::uint64_t last_id_ = 0;
  bool reading_ = false;
  bool read_done_ = false;
  beast::error_code read_error_;
  bool broken_ = false;
  bool closed_ = false;
};

}  // namespace

result<std::unique_ptr<relay_connection>> relay_connection::connect(
    std::string_view url, std::chrono::milliseconds timeout) {
  auto parsed = parse_url(url);
  if (!parsed) return std::unexpected(make_error_code(errc::server_unreachable));
  auto c = std::make_unique<beast_connection>();
  if (auto opened = c->open(*parsed, timeout); !opened) return std::unexpected(opened.error());
  return c;
}

}  // namespace haven::client
