#pragma once
// One WebSocket connection on its own strand: log-in, requests, and the
// delivery of the device's queue. Every request gets exactly one reply.
// The same session runs over plain TCP and over TLS: it is a template on
// the stream, instantiated for the two in websocket_session.cpp. Frames
// are read and written with websocket_frame.hpp straight on the stream.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "frame_fifo.hpp"
#include "relay.hpp"
#include "websocket_frame.hpp"
#include "wire.pb.h"

namespace haven::server {

// The streams a session runs on: ws:// and wss://. A bare socket, not
// Beast's tcp_stream: the WebSocket layer has its own timeouts and the
// HTTP session its own deadline, so a second pair of timers per
// connection would be idle memory. Its executor is the connection's strand
// by type, not a type-erased any_io_executor, so Beast's operations
// dispatch without the indirection.
using strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using plain_stream = boost::asio::basic_stream_socket<boost::asio::ip::tcp, strand>;
using tls_stream = boost::beast::ssl_stream<plain_stream>;

// What the registry and the relay see of a session, whatever its stream.
class session {
 public:
  virtual ~session() = default;
  // Thread-safe: a newly stored envelope for this session's device.
  virtual void push(std::uint64_t seq, store::push_frame frame) = 0;
  // Thread-safe: finish pending requests and writes, then close.
  virtual void shutdown(ws::close_code code, std::string_view reason) = 0;
};

template <class Stream>
class websocket_session final : public session,
                                public std::enable_shared_from_this<websocket_session<Stream>> {
 public:
  websocket_session(Stream&& stream, relay& r, std::string peer);
  ~websocket_session() override;
  websocket_session(const websocket_session&) = delete;
  websocket_session& operator=(const websocket_session&) = delete;

  // Answers the upgrade with `accept_key` (ws::accept_key of the request's
  // key) and starts the session; `early` are bytes read past the request.
  void run(std::string_view accept_key, std::string_view early);

  void push(std::uint64_t seq, store::push_frame frame) override;
  void shutdown(ws::close_code code, std::string_view reason) override;

 private:
  using std::enable_shared_from_this<websocket_session>::shared_from_this;
  using error_code = boost::beast::error_code;
  // A plain socket is waited on before it is read; a TLS stream is not
  // (do_read says why).
  static constexpr bool k_plain = std::is_same_v<Stream, plain_stream>;

  void on_accept(error_code ec);
  // One timer per connection: the log-in deadline, then keep-alive pings
  // and the idle timeout, then the close handshake's deadline.
  void arm_timer(std::chrono::steady_clock::duration after);
  void on_timer(error_code ec);
  // Keep-alive: a ping after this long without a byte from the client,
  // the end after as long again.
  [[nodiscard]] std::chrono::steady_clock::duration keep_alive_tick() const {
    return relay_.cfg.idle_timeout / 2;
  }
  // Takes the frames already read, then reads more unless paused;
  // reading_ is set meanwhile and while a read is in flight.
  void do_read();
  // A plain socket: wait until it has bytes, then read them.
  void wait_readable();
  void on_readable(error_code ec);
  void on_read(error_code ec, std::size_t bytes);
  // False when the connection stops reading requests.
  bool take(const ws::event& event);
  void handle_message(std::span<const std::uint8_t> message, bool text);
  void handle(wire::ClientFrame& frame);

  void handle_register(std::uint64_t id, const wire::RegisterRequest& request);
  void handle_auth(std::uint64_t id, const wire::AuthRequest& request);
  void handle_upload_prekeys(std::uint64_t id, const wire::UploadPrekeysRequest& request);
  void handle_fetch_prekeys(std::uint64_t id, const wire::FetchPrekeysRequest& request);
  void handle_send(std::uint64_t id, wire::SendRequest& request);
  void handle_ack(std::uint64_t id, const wire::AckRequest& request);
  void handle_create_group(std::uint64_t id, const wire::CreateGroupRequest& request);
  void handle_update_group(std::uint64_t id, const wire::UpdateGroupRequest& request);
  void handle_group_send(std::uint64_t id, wire::GroupSendRequest& request);
  void handle_vault_store(std::uint64_t id, wire::VaultStoreRequest& request);
  void handle_vault_header(std::uint64_t id, const wire::VaultHeaderRequest& request);
  void handle_vault_open(std::uint64_t id, const wire::VaultOpenRequest& request);

  // Checks a presented access key against the mailbox's; false for an
  // unknown mailbox too, so the two cannot be told apart.
  [[nodiscard]] bool access_allowed(const std::string& mailbox, const std::string& access_key);
  void logged_in(const store::device_address& address, wire::Role role);

  // Runs `f` on this session's strand once a store request completes.
  template <typename T, typename F>
  auto on_strand(F f);
  void request_finished();
  // A completion that answers request `id`: a store error as an Error,
  // a result with the reply that `fill(frame, value)` (`fill(frame)` for
  // void) makes.
  template <typename T, typename Fill>
  auto answer(std::uint64_t id, Fill fill);
  // Completions that answer with SendReply, and with GroupReply.
  auto reply_sent(std::uint64_t id);
  auto reply_members(std::uint64_t id);

  void take_pushes();
  void pump();
  void reply(const wire::ServerFrame& frame);
  void reply_error(std::uint64_t id, wire::ErrorCode code, std::string_view text);
  void reply_store_error(std::uint64_t id, std::error_code ec);
  // queue() adds a frame to the outbox, send() also starts writing it;
  // start_writing() writes what is queued unless a write is in flight.
  void queue(outgoing_frame frame);
  void send(outgoing_frame frame);
  void start_writing();
  [[nodiscard]] bool outbox_busy() const noexcept;
  void do_write();
  void write_rest();
  void on_written_some(error_code ec, std::size_t bytes);
  void on_write(error_code ec);
  void write_control();
  void on_control_written(error_code ec);
  void close_when_flushed(ws::close_code code, std::string_view reason);
  void maybe_close();
  // Ends the connection once the close frames crossed; abort() at once.
  void finish();
  void abort();

  Stream stream_;
  relay& relay_;
  std::string peer_;  // the client's address, for rate limits only
  // Bytes read and not yet taken: empty and unallocated while idle.
  boost::beast::flat_buffer buffer_;
  ws::frame_reader reader_;
  boost::asio::steady_timer timer_;
  // The control frame waiting (a pong, a keep-alive ping, the close);
  // the one being written belongs to its write.
  std::string control_;
  bool writing_control_ = false;

  // Log-in: one challenge per connection, spent by the first attempt.
  std::array<std::uint8_t, 32> nonce_{};
  bool nonce_spent_ = false;
  std::optional<store::device_address> address_;
  std::string device_key_;  // registry key once logged in

  // Outbound FIFO with one write in flight and a byte cap. The write in
  // flight is its oldest `writing_` frames, `writing_bytes_` in all.
  frame_fifo outbox_;
  std::size_t outbox_bytes_ = 0;
  std::size_t writing_ = 0;
  std::size_t writing_bytes_ = 0;
  // The write in flight (do_write): the WebSocket and ServerFrame headers,
  // each frame's field header in a Batch, the buffers to write and the
  // first of them not yet written whole.
  std::array<std::uint8_t, 10> frame_head_{};
  std::array<std::uint8_t, 12> message_head_{};
  std::vector<std::uint8_t> batch_heads_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  std::size_t write_next_ = 0;

  // Requests handed to the store and not yet answered.
  std::size_t pending_ = 0;
  bool reading_ = false;
  std::size_t read_size_ = 0;  // of the read in flight, or the one after the wait
  bool read_filled_ = false;   // the last read filled its buffer: more is coming
  bool heard_ = false;        // bytes came since the last keep-alive tick
  bool pinged_ = false;       // a keep-alive ping went unanswered so far
  // Closing: no more requests are taken; the close frame goes once every
  // reply is written, and the connection ends once the client's close came.
  bool closing_ = false;
  bool close_sent_ = false;
  bool read_done_ = false;  // the client's close came, or its frames cannot be read
  bool finished_ = false;
  ws::close_code close_code_ = ws::close_code::normal;
  std::string close_text_;
  unsigned malformed_ = 0;

  // Delivery: envelopes with seq <= delivered_seq_ were pushed on this
  // connection; in_flight_ holds those not yet acked (at most the delivery
  // window; a vector allocates nothing while the connection is idle).
  std::uint64_t delivered_seq_ = 0;
  std::vector<std::uint64_t> in_flight_;
  bool more_in_store_ = false;
  bool drained_sent_ = false;
  // Pushes handed over by the store's writer thread, newest first, taken
  // all at once by one handler on the strand (take_pushes), so a batch's
  // pushes to this device go out in one write. A list swapped atomically
  // rather than a vector behind a mutex: 8 bytes per connection, not 64,
  // and the writer never waits for the I/O thread (both measured the same).
  struct pending_push {
    std::uint64_t seq;
    store::push_frame frame;
    pending_push* next;
  };
  std::atomic<pending_push*> pushes_{nullptr};
};

extern template class websocket_session<plain_stream>;
extern template class websocket_session<tls_stream>;

}  // namespace haven::server
