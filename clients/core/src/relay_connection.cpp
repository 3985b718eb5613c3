#include "haven/client/relay_connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <map>
#include <optional>
#include <set>

#include "haven/crypto/tls_policy.hpp"

namespace haven::client {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

struct parsed_url {
  bool tls = false;
  std::string host, port, path;
};

std::optional<parsed_url> parse_url(std::string_view url) {
  parsed_url out;
  if (url.starts_with("wss://")) {
    out.tls = true;
    url.remove_prefix(6);
  } else if (url.starts_with("ws://")) {
    url.remove_prefix(5);
  } else {
    return std::nullopt;
  }
  const auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/v1/ws" : std::string(url.substr(slash));
  // host, host:port, [v6] or [v6]:port
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    out.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.host = std::string(authority);
  if (out.host.starts_with('[') && out.host.ends_with(']'))
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty() || out.port.empty()) return std::nullopt;
  return out;
}

// The relay's own TLS policy, and the peer's certificate verified against
// `ca_file`, or the system's trust store when it is empty.
result<net::ssl::context> client_tls_context(const std::filesystem::path& ca_file) {
  net::ssl::context context(net::ssl::context::tls_client);
  SSL_CTX* ctx = context.native_handle();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, crypto::tls13_ciphersuites) != 1 ||
      SSL_CTX_set1_groups_list(ctx, crypto::tls_groups) != 1)
    return std::unexpected(make_error_code(errc::tls_failed));
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
  context.set_verify_mode(net::ssl::verify_peer);
  beast::error_code ec;
  if (ca_file.empty())
    context.set_default_verify_paths(ec);
  else
    context.load_verify_file(ca_file.string(), ec);
  if (ec) return std::unexpected(make_error_code(errc::tls_failed));
  return context;
}

// The certificate must name `host`: an IP address SAN for an address, else
// a DNS name, which also goes out as SNI (RFC 6066 allows no addresses).
bool expect_host(SSL* ssl, const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  if (!ec) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  // SSL_set_tlsext_host_name without the macro's old-style cast.
  return SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(host.c_str())) == 1 &&
         SSL_set1_host(ssl, host.c_str()) == 1;
}

// One connection over ws:// (plain_stream) or wss:// (tls_stream).
template <class Stream>
class beast_connection final : public relay_connection {
  static constexpr bool k_tls = std::is_same_v<Stream, tls_stream>;

 public:
  beast_connection() requires(!k_tls) : ws_(ioc_) {}
  explicit beast_connection(net::ssl::context tls) requires k_tls
      : tls_(std::move(tls)), ws_(ioc_, *tls_) {}
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
    if constexpr (k_tls) {
      if (!expect_host(ws_.next_layer().native_handle(), url.host))
        return std::unexpected(make_error_code(errc::tls_failed));
      done = false;
      ws_.next_layer().async_handshake(net::ssl::stream_base::client, [&](beast::error_code e) {
        ec = e;
        done = true;
      });
      if (!run_until(done, timeout)) return std::unexpected(make_error_code(errc::timeout));
      if (ec) return std::unexpected(make_error_code(errc::tls_failed));
    }
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

  // Waits up to `timeout` for one message; its frames land in replies_ or
  // pushed_.
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
    if (!frame.has_batch()) {
      take(std::move(frame));
      return {};
    }
    for (auto& f : *frame.mutable_batch()->mutable_frames()) {
      if (f.has_batch()) return std::unexpected(make_error_code(errc::protocol_error));
      take(std::move(f));
    }
    return {};
  }

  void take(wire::ServerFrame frame) {
    if (frame.request_id() == 0) {
      pushed_.push_back(std::move(frame));
    } else if (!ignored_.erase(frame.request_id())) {
      replies_.emplace(frame.request_id(), std::move(frame));
    }
  }

  std::optional<net::ssl::context> tls_;  // wss:// only; ws_ refers to it
  net::io_context ioc_;
  websocket::stream<Stream> ws_;
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

template <class Connection>
result<std::unique_ptr<relay_connection>> open(std::unique_ptr<Connection> c, const parsed_url& url,
                                               std::chrono::milliseconds timeout) {
  if (auto opened = c->open(url, timeout); !opened) return std::unexpected(opened.error());
  return c;
}

}  // namespace

result<std::unique_ptr<relay_connection>> relay_connection::connect(
    std::string_view url, const connection_options& options) {
  auto parsed = parse_url(url);
  if (!parsed) return std::unexpected(make_error_code(errc::server_unreachable));
  if (!parsed->tls)
    return open(std::make_unique<beast_connection<plain_stream>>(), *parsed, options.timeout);
  auto tls = client_tls_context(options.ca_file);
  if (!tls) return std::unexpected(tls.error());
  return open(std::make_unique<beast_connection<tls_stream>>(std::move(*tls)), *parsed,
              options.timeout);
}

}  // namespace haven::client
