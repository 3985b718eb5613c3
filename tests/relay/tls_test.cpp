// Native TLS: a real havend with a certificate from a CA made for the test,
// reached over wss:// and https:// by clients that verify it (Beast and
// asio::ssl), and by clients that must be refused.

#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <fstream>
#include <thread>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

namespace {

namespace ssl = net::ssl;
namespace http = beast::http;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// A CA and a server certificate for localhost and 127.0.0.1 signed by it,
// plus a second CA that signed nothing of havend's; made with the openssl
// command, P-256 keys, valid for 30 days.
struct test_pki {
  temp_dir dir{"haven-pki"};
  std::filesystem::path ca = dir.path() / "ca.pem";
  std::filesystem::path ca_key = dir.path() / "ca.key";
  std::filesystem::path other_ca = dir.path() / "other-ca.pem";
  std::filesystem::path cert = dir.path() / "server.pem";
  std::filesystem::path key = dir.path() / "server.key";

  test_pki() {
    const auto ext = dir.path() / "server.ext";
    std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                          "basicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth\n";
    make_ca(ca, ca_key, "Haven Test CA");
    make_ca(other_ca, dir.path() / "other-ca.key", "Someone Else's CA");
    const auto csr = dir.path() / "server.csr";
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key.string(), "-out", csr.string(), "-subj", "/CN=localhost"});
    openssl({"x509", "-req", "-in", csr.string(), "-CA", ca.string(), "-CAkey", ca_key.string(),
             "-CAcreateserial", "-days", "30", "-extfile", ext.string(), "-out", cert.string()});
  }

  void make_ca(const std::filesystem::path& pem, const std::filesystem::path& pem_key,
               const std::string& name) const {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", pem_key.string(), "-out", pem.string(), "-days", "30", "-subj",
             "/CN=" + name});
  }

  void openssl(std::vector<std::string> args) const {
    args.insert(args.begin(), HAVEN_OPENSSL_PATH);
    const auto r = run_command(args, dir.path() / "openssl.log");
    if (r.exit_code != 0) throw std::runtime_error("openssl failed: see " + dir.path().string());
  }

  [[nodiscard]] std::vector<std::string> flags() const {
    return {"--tls-cert", cert.string(), "--tls-key", key.string()};
  }
};

// What a test client trusts and expects of the server.
struct tls_client_options {
  std::filesystem::path ca;        // the only CA trusted
  std::string host = "localhost";  // the name the certificate must carry (and SNI)
  int max_version = TLS1_3_VERSION;
};

ssl::context client_context(const tls_client_options& o) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_max_proto_version(ctx.native_handle(), o.max_version);
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.load_verify_file(o.ca.string());
  return ctx;
}

// A wss:// client: TLS and WebSocket handshakes and reads, each bounded by
// a timeout (asio's ssl::stream has no timeouts of its own).
class wss_client {
 public:
  wss_client(unsigned short port, const tls_client_options& o)
      : ctx_(client_context(o)), ws_(ioc_, ctx_) {
    beast::get_lowest_layer(ws_).connect({net::ip::make_address("127.0.0.1"), port});
    SSL* ssl = ws_.next_layer().native_handle();
    if (o.host.starts_with("127.")) {
      REQUIRE(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o.host.c_str()) == 1);
    } else {
      REQUIRE(SSL_set1_host(ssl, o.host.c_str()) == 1);
      REQUIRE(SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                       const_cast<char*>(o.host.c_str())) == 1);
    }
  }

  // The TLS handshake; its error (none when the server is trusted).
  beast::error_code tls_handshake() {
    return wait(
        [&](auto done) { ws_.next_layer().async_handshake(ssl::stream_base::client, done); });
  }

  // TLS, then the upgrade on /v1/ws, then the challenge frame.
  void open() {
    REQUIRE_FALSE(tls_handshake());
    REQUIRE_FALSE(wait([&](auto done) { ws_.async_handshake("localhost", "/v1/ws", done); }));
    ws_.binary(true);
    auto first = next();
    REQUIRE(first);
    REQUIRE(first->has_challenge());
    challenge = first->challenge();
  }

  [[nodiscard]] SSL* ssl() { return ws_.next_layer().native_handle(); }

  std::optional<wire::ServerFrame> next(std::chrono::milliseconds timeout = 5s) {
    buffer_.consume(buffer_.size());
    error = wait([&](auto done) { ws_.async_read(buffer_, done); }, timeout);
    if (error) return std::nullopt;
    wire::ServerFrame frame;
    if (!frame.ParseFromString(beast::buffers_to_string(buffer_.data()))) return std::nullopt;
    return frame;
  }

  void send_bytes(const std::string& bytes) {
    REQUIRE_FALSE(wait([&](auto done) { ws_.async_write(net::buffer(bytes), done); }));
  }

  wire::ServerFrame request(wire::ClientFrame frame) {
    frame.set_request_id(++last_id_);
    send_bytes(frame.SerializeAsString());
    for (;;) {
      auto f = next();
      REQUIRE(f);
      if (f->request_id() == last_id_) return *f;
    }
  }

  // Registers `device` with `invite` (the reply must be `registered`) and
  // keeps its mailbox id.
  void register_device(test_device& device, const std::string& invite) {
    const auto reply = request(device.register_frame(challenge, invite));
    INFO(reply.ShortDebugString());
    REQUIRE(reply.has_registered());
    device.mailbox = reply.registered().mailbox_id();
  }

  // Reads until the server ends the connection; its close reason then.
  websocket::close_reason closed_by_server() {
    while (next()) {
    }
    INFO("connection ended with: " << error.message());
    // After the server's close frame our reply may meet a connection it has
    // already shut (as in ws_client): still closed by the server.
    CHECK((error == websocket::error::closed || error == net::error::eof ||
           error == net::error::connection_reset || error == net::error::broken_pipe ||
           error == net::error::not_connected || error == ssl::error::stream_truncated));
    return ws_.reason();
  }

  wire::AuthChallenge challenge;
  beast::error_code error;

 private:
  template <typename Start>
  beast::error_code wait(Start start, std::chrono::milliseconds timeout = 5s) {
    beast::error_code result;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (done) return result;
    beast::get_lowest_layer(ws_).close();
    ioc_.restart();
    ioc_.run();
    return net::error::timed_out;
  }

  net::io_context ioc_;
  ssl::context ctx_;
  websocket::stream<tls_stream> ws_;
  beast::flat_buffer buffer_;
  std::uint64_t last_id_ = 0;
};

// OpenSSL's reason for a failed handshake (SSL_R_...), 0 for another error.
int ssl_reason(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category() ? ERR_GET_REASON(ec.value()) : 0;
}

struct tls_fixture {
  test_pki pki;
  temp_dir dir{"haven-tls"};
  havend_process havend;

  explicit tls_fixture(std::vector<std::string> more = {})
      : havend(dir.path() / "data", with(pki.flags(), std::move(more))) {}

  static std::vector<std::string> with(std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  [[nodiscard]] tls_client_options trusted() const { return {.ca = pki.ca}; }

};

wire::ClientFrame ping() {
  wire::ClientFrame f;
  f.mutable_ping();
  return f;
}

}  // namespace

TEST_CASE("over wss:// a client that trusts the CA registers, logs in and pings, on TLS 1.3",
          "[relay][tls]") {
  tls_fixture f({"--log-level", "debug"});
  const auto invite = f.havend.invite();
  f.havend.start();
  test_device alice;

  wss_client first(f.havend.port(), f.trusted());
  first.open();
  CHECK(std::string(SSL_get_version(first.ssl())) == "TLSv1.3");
  CHECK(SSL_get_verify_result(first.ssl()) == X509_V_OK);
  const std::string suite = SSL_get_cipher_name(first.ssl());
  CHECK((suite == "TLS_AES_256_GCM_SHA384" || suite == "TLS_CHACHA20_POLY1305_SHA256" ||
         suite == "TLS_AES_128_GCM_SHA256"));
  first.register_device(alice, invite);

  // By address too: the certificate names 127.0.0.1.
  wss_client second(f.havend.port(), {.ca = f.pki.ca, .host = "127.0.0.1"});
  second.open();
  REQUIRE(second.request(alice.auth_frame(second.challenge)).has_authenticated());
  CHECK(second.request(ping()).has_pong());
  // The negotiated version is logged at debug only.
  CHECK(f.havend.log().find("debug TLS: TLSv1.3") != std::string::npos);
}

TEST_CASE("TLS 1.2, an untrusted CA, a wrong host name or address are refused in the handshake",
          "[relay][tls]") {
  tls_fixture f;
  f.havend.start();

  SECTION("a client limited to TLS 1.2") {
    wss_client c(f.havend.port(), {.ca = f.pki.ca, .max_version = TLS1_2_VERSION});
    const auto ec = c.tls_handshake();
    INFO(ec.message());
    CHECK(ssl_reason(ec) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  }
  SECTION("a client that does not trust havend's CA") {
    wss_client c(f.havend.port(), {.ca = f.pki.other_ca});
    const auto ec = c.tls_handshake();
    INFO(ec.message());
    CHECK(ssl_reason(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(SSL_get_verify_result(c.ssl()) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  }
  SECTION("a client that expects another host name") {
    wss_client c(f.havend.port(), {.ca = f.pki.ca, .host = "haven.example.org"});
    const auto ec = c.tls_handshake();
    INFO(ec.message());
    CHECK(ssl_reason(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(SSL_get_verify_result(c.ssl()) == X509_V_ERR_HOSTNAME_MISMATCH);
  }
  SECTION("a client that expects another address") {
    wss_client c(f.havend.port(), {.ca = f.pki.ca, .host = "127.0.0.2"});
    const auto ec = c.tls_handshake();
    INFO(ec.message());
    CHECK(ssl_reason(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(SSL_get_verify_result(c.ssl()) == X509_V_ERR_IP_ADDRESS_MISMATCH);
  }
  // None of them hurt the next, trusted client.
  wss_client ok(f.havend.port(), f.trusted());
  ok.open();
}

TEST_CASE("plain ws:// and http:// to the TLS port get no WebSocket and no answer",
          "[relay][tls]") {
  tls_fixture f;
  f.havend.start();
  CHECK_THROWS(ws_client(f.havend.port()));

  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect({net::ip::make_address("127.0.0.1"), f.havend.port()});
  http::request<http::empty_body> req(http::verb::get, "/healthz", 11);
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(stream, buffer, res, ec);
  CHECK(ec);  // closed without an HTTP response
}

TEST_CASE("https:// serves /healthz and the browser client's files with the CSP", "[relay][tls]") {
  temp_dir web{"haven-web"};
  std::ofstream(web.path() / "index.html") << "<!doctype html><title>recipes</title>\n";
  tls_fixture f({"--web-root", web.path().string()});
  f.havend.start();

  net::io_context ioc;
  auto ctx = client_context({.ca = f.pki.ca});
  tls_stream stream(ioc, ctx);
  REQUIRE(SSL_set1_host(stream.native_handle(), "localhost") == 1);
  beast::get_lowest_layer(stream).connect({net::ip::make_address("127.0.0.1"), f.havend.port()});
  stream.handshake(ssl::stream_base::client);
  beast::flat_buffer buffer;
  const auto get = [&](const char* target) {
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "localhost");
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  };
  const auto health = get("/healthz");
  CHECK(health.result() == http::status::ok);
  CHECK(health.body() == "ok\n");
  CHECK(health[http::field::cache_control] == "no-store");
  const auto page = get("/");  // the same connection: keep-alive over TLS
  CHECK(page.result() == http::status::ok);
  CHECK(page.body().find("recipes") != std::string::npos);
  CHECK(page["Content-Security-Policy"].find("default-src 'self'") != std::string_view::npos);
  CHECK(page["Referrer-Policy"] == "no-referrer");
}

TEST_CASE("a client that never finishes the TLS handshake is closed at the handshake timeout",
          "[relay][tls]") {
  temp_dir conf;
  const auto file = conf.path() / "havend.toml";
  std::ofstream(file) << "[limits]\nhandshake_timeout_seconds = 1\n";
  tls_fixture f({"--config", file.string(), "--log-level", "debug"});
  f.havend.start();

  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  socket.connect({net::ip::make_address("127.0.0.1"), f.havend.port()});
  // The first bytes of a ClientHello record, then silence.
  const std::string partial("\x16\x03\x01\x02\x00", 5);
  net::write(socket, net::buffer(partial));
  char byte = 0;
  beast::error_code ec = net::error::timed_out;
  socket.async_read_some(net::buffer(&byte, 1), [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run_for(5s);
  INFO(ec.message());
  CHECK((ec == net::error::eof || ec == net::error::connection_reset));
  // Closed by the handshake timer, not for the bytes sent: havend's debug
  // line says which (read once havend has exited and flushed it).
  CHECK(f.havend.stop() == 0);
  const auto reason = "TLS handshake failed: " + beast::error_code(beast::error::timeout).message();
  INFO(f.havend.log());
  CHECK(f.havend.log().find(reason) != std::string::npos);
}

TEST_CASE("over wss:// the frame cap closes with 1009 and SIGTERM drains with 1001",
          "[relay][tls]") {
  tls_fixture f({"--max-frame-bytes", "4096"});
  const auto invite = f.havend.invite();
  f.havend.start();
  test_device alice;
  {
    wss_client c(f.havend.port(), f.trusted());
    c.open();
    c.register_device(alice, invite);
    c.send_bytes(std::string(8192, 'x'));
    CHECK(c.closed_by_server().code == websocket::close_code::too_big);
  }
  wss_client c(f.havend.port(), f.trusted());
  c.open();
  CHECK(c.request(ping()).error().code() == wire::ERROR_NOT_AUTHENTICATED);
  int exit_code = -1;
  std::thread stopper([&] { exit_code = f.havend.stop(); });
  CHECK(c.closed_by_server().code == websocket::close_code::going_away);
  stopper.join();
  CHECK(exit_code == 0);
  CHECK(f.havend.log().find("did not finish") == std::string::npos);  // drained, not cut off
}

TEST_CASE("havend refuses to start with a key that does not match, an unreadable or half [tls]",
          "[relay][tls]") {
  test_pki pki;
  temp_dir dir;
  const auto err = dir.path() / "havend.err";
  const auto start = [&](std::vector<std::string> tls) {
    std::filesystem::remove(err);
    std::vector<std::string> argv{havend_process::binary(), "--port", "0", "--data-dir",
                                  (dir.path() / "data").string()};
    argv.insert(argv.end(), tls.begin(), tls.end());
    const auto r = run_command(argv, err);
    return std::pair{r.exit_code, read_text(err)};
  };

  // The CA's key is a valid P-256 key, just not the certificate's.
  auto [code, message] = start({"--tls-cert", pki.cert.string(), "--tls-key", pki.ca_key.string()});
  CHECK(code != 0);
  CHECK(message.find("does not match the certificate") != std::string::npos);

  std::tie(code, message) =
      start({"--tls-cert", pki.cert.string(), "--tls-key", (dir.path() / "missing.key").string()});
  CHECK(code != 0);
  CHECK(message.find("cannot be read") != std::string::npos);

  std::tie(code, message) = start({"--tls-cert", pki.key.string(), "--tls-key", pki.key.string()});
  CHECK(code != 0);
  CHECK(message.find("is not a PEM certificate chain") != std::string::npos);

  std::tie(code, message) = start({"--tls-cert", pki.cert.string()});
  CHECK(code != 0);
  CHECK(message.find("set both") != std::string::npos);

  const auto help = run_command({havend_process::binary(), "--help"});
  CHECK(help.out.find("--tls-cert") != std::string::npos);
  CHECK(help.out.find("--tls-key") != std::string::npos);
}

TEST_CASE("plain ws:// on a non-loopback address warns at start-up, on loopback it does not",
          "[relay][tls]") {
  temp_dir dir;
  {
    havend_process loopback(dir.path() / "a");
    loopback.start();
    CHECK(loopback.stop() == 0);
    CHECK(loopback.log().find("not a loopback address") == std::string::npos);
  }
  havend_process everywhere(dir.path() / "b", {"--listen", "0.0.0.0"});
  everywhere.start();
  CHECK(everywhere.stop() == 0);
  const auto log = everywhere.log();
  CHECK(log.find("warning plain HTTP and ws:// on 0.0.0.0, which is not a loopback address") !=
        std::string::npos);
  CHECK(log.find("[tls]") != std::string::npos);
}
