#include "haven/server/server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "relay.hpp"
#include "tls.hpp"
#include "websocket_session.hpp"

namespace haven::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t k_max_http_body = 8 * 1024;

std::string_view content_type(const std::filesystem::path& p) {
  const auto ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

// HTTP on the relay's port, over TCP or TLS: health, the browser client's
// files, and the upgrade to the WebSocket relay.
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
 public:
  http_session(Stream&& stream, relay& r, std::string peer)
      : stream_(std::move(stream)),
        relay_(r),
        peer_(std::move(peer)),
        deadline_(stream_.get_executor()) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&http_session::start, shared_from_this()));
  }

 private:
  using std::enable_shared_from_this<http_session>::shared_from_this;
  static constexpr bool k_tls = std::is_same_v<Stream, tls_stream>;

  void start() {
    if constexpr (k_tls) {
      // The handshake timeout covers the TLS handshake: a client that never
      // finishes it is closed like one that never sends a request.
      arm_deadline();
      stream_.async_handshake(
          net::ssl::stream_base::server,
          beast::bind_front_handler(&http_session::on_handshake, shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      if (deadline_passed()) ec = beast::error::timeout;  // not the cancel it caused
      spdlog::debug("TLS handshake failed: {}", ec.message());
      return;
    }
    spdlog::debug("TLS: {} with {}", SSL_get_version(stream_.native_handle()),
                  SSL_get_cipher_name(stream_.native_handle()));
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(k_max_http_body);
    parser_->header_limit(8 * 1024);
    arm_deadline();
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    // Time-outs, resets, a TLS peer gone without close_notify: the stream
    // closes as this session ends.
    if (ec) return;
    auto request = parser_->release();
    if (websocket::is_upgrade(request)) {
      if (request.target() != "/v1/ws" || relay_.stopping)
        return respond(request, http::status::not_found, "text/plain", "not found\n");
      if (request[http::field::sec_websocket_version] != "13")
        return respond(request, http::status::upgrade_required, "text/plain",
                       "WebSocket version 13 only\n");
      const auto key = request[http::field::sec_websocket_key];
      const auto accept = ws::accept_key(std::string_view(key.data(), key.size()));
      if (!accept)
        return respond(request, http::status::bad_request, "text/plain",
                       "Sec-WebSocket-Key must be 16 bytes in base64\n");
      // The WebSocket session's own timeouts take over.
      deadline_.expires_at(net::steady_timer::time_point::max());
      // Bytes read past the request; run() copies them before this returns.
      const auto read_past = buffer_.data();
      std::make_shared<websocket_session<Stream>>(std::move(stream_), relay_, std::move(peer_))
          ->run(*accept, {static_cast<const char*>(read_past.data()), read_past.size()});
      return;
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head)
      return respond(request, http::status::method_not_allowed, "text/plain", "method not allowed\n");
    const auto target = std::string_view(request.target());
    if (target == "/healthz") return respond(request, http::status::ok, "text/plain", "ok\n");
    serve_file(request, target);
  }

  void serve_file(const http::request<http::string_body>& request, std::string_view target) {
    const auto& root = relay_.cfg.web_root;
    auto path = std::string(target.substr(0, target.find_first_of("?#")));
    if (root.empty() || path.empty() || path.front() != '/' ||
        path.find("..") != std::string::npos || path.find('\\') != std::string::npos)
      return respond(request, http::status::not_found, "text/plain", "not found\n");
    if (path.back() == '/') path += "index.html";
    const auto file = root / path.substr(1);
    std::ifstream in(file, std::ios::binary);
    if (!in || std::filesystem::is_directory(file))
      return respond(request, http::status::not_found, "text/plain", "not found\n");
    std::ostringstream body;
    body << in.rdbuf();
    respond(request, http::status::ok, content_type(file), std::move(body).str());
  }

  void respond(const http::request<http::string_body>& request, http::status status,
               std::string_view type, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(status, request.version());
    res->set(http::field::server, "havend");
    res->set(http::field::content_type, std::string(type));
    // Leave no trace in the browser: nothing cached, no referrer, one origin.
    res->set(http::field::cache_control, "no-store");
    res->set("Referrer-Policy", "no-referrer");
    res->set("X-Content-Type-Options", "nosniff");
    res->set("X-Frame-Options", "DENY");
    res->set("Content-Security-Policy",
             "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
             "style-src 'self' 'unsafe-inline'; script-src 'self' 'wasm-unsafe-eval'; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    if (status == http::status::upgrade_required)
      res->set(http::field::sec_websocket_version, "13");
    res->keep_alive(request.keep_alive());
    if (request.method() == http::verb::head) {
      res->content_length(body.size());
    } else {
      res->body() = std::move(body);
      res->prepare_payload();
    }
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (!res->keep_alive()) return self->close();
                        self->do_read();
                      });
  }

  // Ends the connection politely: TLS sends close_notify first (bounded by
  // the handshake timeout), plain TCP a FIN.
  void close() {
    if constexpr (k_tls) {
      arm_deadline();
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      stream_.shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // Slow or silent clients are dropped once the handshake timeout passes
  // from now: closing the socket fails whatever waits on it. The wait does
  // not keep the session alive, and a wait that fired before the deadline
  // moved (re-armed, or the stream handed to a WebSocket session) does
  // nothing.
  void arm_deadline() {
    deadline_.expires_after(relay_.cfg.handshake_timeout);
    deadline_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || !self->deadline_passed()) return;
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream_).close(ignored);
    });
  }

  [[nodiscard]] bool deadline_passed() const {
    return deadline_.expiry() <= std::chrono::steady_clock::now();
  }

  Stream stream_;
  relay& relay_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  net::steady_timer deadline_;
};

class listener : public std::enable_shared_from_this<listener> {
 public:
  // `tls` null: plain HTTP and ws://; else HTTPS and wss:// with it.
  listener(net::io_context& ioc, relay& r, net::ssl::context* tls)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), relay_(r), tls_(tls) {}

  tcp::endpoint open(const tcp::endpoint& endpoint) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
    return acceptor_.local_endpoint();
  }

  void run() { do_accept(); }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

 private:
  void do_accept() {
    // Each connection gets its own strand.
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, plain_stream socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors and the like: keep serving who is connected.
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      beast::error_code ignored;
      const auto address = socket.remote_endpoint(ignored).address().to_string();
      if (!relay_.connections.allow(address)) {
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ignored);
        if (relay_.cfg.log_addresses) spdlog::info("connection from {}", address);
        if (tls_ != nullptr)
          std::make_shared<http_session<tls_stream>>(tls_stream(std::move(socket), *tls_), relay_,
                                                     address)
              ->run();
        else
          std::make_shared<http_session<plain_stream>>(std::move(socket), relay_, address)->run();
      }
    }
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  relay& relay_;
  net::ssl::context* tls_;
};

}  // namespace

struct server::impl {
  impl(const config& c, store::store& s)
      : cfg(c),
        tls(tls_configured(cfg) ? std::optional(make_tls_context(cfg)) : std::nullopt),
        relay_state(cfg, s, ioc),
        expiry_timer(ioc) {}

  void schedule_expiry() {
    expiry_timer.expires_after(cfg.expiry_interval);
    expiry_timer.async_wait([this](beast::error_code ec) {
      if (ec || relay_state.stopping) return;
      const auto cutoff = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch() -
                              cfg.envelope_ttl)
                              .count();
      relay_state.store.expire(cutoff, [](store::result<std::size_t> removed) {
        if (!removed) spdlog::error("expiring envelopes failed: {}", removed.error().message());
        else if (*removed > 0) spdlog::info("expired {} undelivered envelopes", *removed);
      });
      schedule_expiry();
    });
  }

  config cfg;
  // Before the io_context: sessions still queued in it hold SSL objects.
  std::optional<net::ssl::context> tls;
  net::io_context ioc;
  // Ends a drain that a stuck peer would drag out.
  std::jthread shutdown_watchdog;
  relay relay_state;
  std::shared_ptr<listener> acceptor;
  net::steady_timer expiry_timer;
};

server::server(const config& cfg, store::store& store) : impl_(std::make_unique<impl>(cfg, store)) {}

server::~server() = default;

std::string server::listen() {
  const auto address = net::ip::make_address(impl_->cfg.listen);
  if (!impl_->tls && !address.is_loopback())
    spdlog::warn(
        "plain HTTP and ws:// on {}, which is not a loopback address: anyone on the path can "
        "read and change the traffic. Set [tls] cert_file and key_file, or keep havend behind "
        "a TLS proxy (deploy/README.md)",
        impl_->cfg.listen);
  impl_->acceptor = std::make_shared<listener>(impl_->ioc, impl_->relay_state,
                                               impl_->tls ? &*impl_->tls : nullptr);
  const auto bound = impl_->acceptor->open({address, impl_->cfg.port});
  std::ostringstream out;
  if (bound.address().is_v6()) out << '[' << bound.address().to_string() << ']';
  else out << bound.address().to_string();
  out << ':' << bound.port();
  return out.str();
}

void server::run() {
  impl_->acceptor->run();
  impl_->schedule_expiry();
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < impl_->cfg.threads; ++i) extra.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : extra) t.join();
  if (impl_->shutdown_watchdog.joinable()) {
    impl_->shutdown_watchdog.request_stop();
    impl_->shutdown_watchdog.join();
  }
}

void server::stop() {
  net::post(impl_->ioc, [this] {
    if (impl_->relay_state.stopping.exchange(true)) return;
    spdlog::info("shutting down: {} connections to close", impl_->relay_state.registry.size());
    impl_->acceptor->stop();
    impl_->expiry_timer.cancel();
    impl_->shutdown_watchdog = std::jthread([this](std::stop_token stop) {
      std::mutex mutex;
      std::condition_variable_any wake;
      std::unique_lock lock(mutex);
      if (!wake.wait_for(lock, stop, std::chrono::seconds(5), [] { return false; }) &&
          !stop.stop_requested()) {
        spdlog::warn("shutdown: closing the connections that did not finish in 5 s");
        impl_->ioc.stop();
      }
    });
    for (auto& session : impl_->relay_state.registry.all())
      session->shutdown(ws::close_code::going_away, "server shutting down");
  });
}

}  // namespace haven::server
