// haven_loadgen: a load generator for havend over loopback WebSocket.
//
// Opens authenticated connections (each registers with one invite token),
// sends sealed envelopes of a given size between them with a bounded number
// of unacknowledged sends per connection, acks every pushed envelope, and
// reports durable-ack throughput, send-to-delivery latency and, in offline
// mode, the queue-in and drain rates. Every send must be answered with
// SendReply and every envelope delivered exactly once, or it exits non-zero.
//
//   online:  connection i sends to connection (i+1) % N, all logged in.
//   offline: N senders and N recipients (2N invites); recipients register,
//            disconnect, the senders queue everything, then the recipients
//            log in again and drain their queues.
//   fanout:  N members (default 1,000), all logged in; connection 0 creates
//            a group and adds the others (256 a request); connections
//            0..S-1 (--senders) send group messages, each delivered to
//            every member but its sender. Reports deliveries/s and havend's
//            CPU per delivery.
//   idle:    N connections log in and stay idle; havend's memory
//            (/proc/PID/status and smaps_rollup, --server-pid) is read
//            before the first connection and after the last, per connection.
//
// Accounts come from invite tokens (--invites: each connection registers)
// or from fill_store's accounts file (--accounts: each logs in).
//
// The send time (steady_clock nanoseconds) rides in the first 8 bytes of the
// sealed payload; the receiver measures latency when the push arrives. Both
// ends live in this process, so the clocks agree.

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <CLI/CLI.hpp>
#include <google/protobuf/arena.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "client_frames.hpp"
#include "haven/crypto/signing.hpp"
#include "haven/crypto/verify.hpp"
#include "wire.pb.h"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using namespace haven;
using namespace haven::bench_util;
namespace ws = haven::bench_util::ws;

// Request ids tell replies apart without a lookup: sends use 1..M (message
// index + 1), acks, log-ins and group changes carry a high bit each (a group
// change also carries the member count it should leave).
constexpr std::uint64_t k_group_ids = 1ULL << 61;
constexpr std::uint64_t k_ack_ids = 1ULL << 62;
constexpr std::uint64_t k_login_ids = 1ULL << 63;
constexpr std::size_t k_stamp_bytes = 8;
constexpr std::size_t k_group_changes = 256;  // members added per UpdateGroupRequest, at most
constexpr std::size_t k_none = static_cast<std::size_t>(-1);
constexpr std::size_t k_any = k_none - 1;  // fanout: every sender but oneself
constexpr summary_words k_words{"haven_loadgen",
                                "senders",
                                "",
                                "durable-ack sends",
                                "havend",
                                "every send acknowledged, every envelope delivered exactly once",
                                "connections logged in, idle",
                                "both ends of loopback"};

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  crypto::random_fill({reinterpret_cast<std::uint8_t*>(s.data()), n});
  return s;
}

template <typename Array>
std::string as_string(const Array& a) {
  return {reinterpret_cast<const char*>(a.data()), a.size()};
}

struct options : load_options {
  std::string invites;
  std::string accounts;  // fill_store's accounts file, instead of invites
  unsigned threads = 1;
  std::size_t open_concurrency = 0;  // connections opening at once; 0 = all
  std::size_t ack_batch = 32;        // envelopes one ack names at most
};

// An account to log in as (fill_store's accounts file), or an invite
// token to register one with.
struct credentials {
  std::string token;
  std::string mailbox;  // empty: register with the token
  std::string seed;
  std::string access_key;
};

class bench;

// One WebSocket connection and the account it logs in as. All its handlers
// run on its own strand.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(bench& b, net::io_context& ioc, std::size_t index, credentials who);

  void open() { open(!registered_); }
  void open(bool do_register) {
    net::dispatch(strand_, [self = shared_from_this(), do_register] { self->do_open(do_register); });
  }
  void start_sending() {
    net::dispatch(strand_, [self = shared_from_this()] { self->do_start_sending(); });
  }
  void close() {
    net::dispatch(strand_, [self = shared_from_this()] { self->do_close(); });
  }
  // Fanout: create the group and add every other connection to it.
  void create_group() {
    net::dispatch(strand_, [self = shared_from_this()] { self->update_group(0); });
  }
  // Before the run: `sender` (k_any: the fan-out senders) sends this
  // connection `count` envelopes, told apart by `slots` sender and message
  // indexes.
  void expect(std::size_t sender, std::size_t slots, std::size_t count, bool keep_latencies) {
    expected_sender = sender;
    expected = count;
    seen_.assign(slots, 0);
    if (keep_latencies) latencies_ns.reserve(count);
  }

  // Set before the run, read-only while it goes.
  const std::size_t index;
  std::size_t target = k_none;           // the connection this one sends to
  std::size_t expected_sender = k_none;  // the connection that sends to this one
  std::size_t expected = 0;              // envelopes it should receive

  // Written on the strand; read by others only after a phase barrier.
  std::string mailbox;
  std::string access_key;
  std::vector<std::int64_t> latencies_ns;
  std::size_t received = 0;
  std::size_t sends_acked = 0;
  bool drained = false;

 private:
  void do_open(bool do_register);
  void on_connect(error_code ec);
  void do_read();
  void on_read(error_code ec, std::size_t bytes);
  bool take_frames();
  void on_close_frame(std::span<const std::uint8_t> payload);
  void handle(const wire::ServerFrame& f);
  void on_challenge(const wire::AuthChallenge& c);
  void on_envelope(const wire::Envelope& e);
  void on_sent(std::uint64_t msg);
  void flush_acks();
  void update_group(std::size_t members);
  void do_start_sending();
  void maybe_send();
  void send_one(std::uint64_t msg);
  void write(const std::string& message) { write_frame(ws::opcode::binary, message); }
  void write_frame(ws::opcode op, std::string_view payload);
  void do_write();
  void on_write(error_code ec);
  void do_close();
  void report_closed();
  void fail(const std::string& what);

  bench& bench_;
  net::strand<net::io_context::executor_type> strand_;
  tcp::socket socket_;
  // What has been read and not yet taken: in_[0, in_size_).
  std::vector<std::uint8_t> in_;
  std::size_t in_size_ = 0;
  std::deque<std::string> outbox_;                 // whole frames
  std::uint64_t mask_state_ = 0x9e3779b97f4a7c15;  // for the frames' masks
  bool writing_ = false;
  bool handshaken_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool closed_ = false;  // bench_.on_closed() called for this close
  bool registering_ = true;

  const std::string token_;
  // The device key's seed; the key is made from it for each log-in. A
  // signing_key lives in guarded sodium_malloc memory (four memory mappings),
  // and 20,000 idle connections holding theirs would pass vm.max_map_count
  // (65,530): beyond it libsodium's guard pages silently fail, and then
  // sodium_malloc does (std::bad_alloc). These are throwaway bench accounts.
  const std::string key_seed_;
  const std::string dh_key_ = random_bytes(32);
  bool registered_ = false;  // the account exists: log in, do not register

  // Sending.
  bool sending_ = false;
  std::uint64_t next_ = 0;
  std::size_t in_flight_ = 0;
  std::vector<std::uint8_t> acked_;  // per message index
  wire::ClientFrame send_frame_;
  net::steady_timer pace_timer_;
  bool pace_armed_ = false;

  // Receiving.
  std::vector<std::uint8_t> seen_;  // per message index of expected_sender
  std::uint64_t last_seq_ = 0;
  std::uint64_t acks_sent_ = 0;
  wire::ClientFrame ack_frame_;
};

class bench {
 public:
  bench(options o, std::vector<credentials> who);
  int run();

  // Called by connections, from any thread.
  void on_logged_in();
  void on_group_ready();
  void on_send_acked();
  void on_delivered();
  void on_ack_replied(std::size_t envelopes);
  void on_drained();
  void on_closed();
  void fail(std::string why);

  const options opts;
  const std::uint32_t run_tag;
  const std::string group_id = random_bytes(16);  // fanout
  // The pacing origin: set before the senders start.
  [[nodiscard]] steady::time_point send_start() const { return marks_.send_begin.at; }
  [[nodiscard]] tcp::endpoint endpoint() const {
    return {net::ip::make_address_v4("127.0.0.1"), opts.port};
  }
  [[nodiscard]] bool offline() const { return opts.mode == "offline"; }
  [[nodiscard]] bool idle() const { return opts.mode == "idle"; }
  [[nodiscard]] bool fanout() const { return opts.mode == "fanout"; }
  [[nodiscard]] bool draining() const { return phase_.load() == phase::draining; }
  [[nodiscard]] std::size_t total() const { return senders_ * opts.messages; }
  // Envelopes pushed in all: fanout, each message to every member but its sender.
  [[nodiscard]] std::size_t deliveries() const {
    return fanout() ? total() * (conns_.size() - 1) : total();
  }
  [[nodiscard]] std::size_t senders() const { return senders_; }
  const std::vector<std::shared_ptr<connection>>& conns() const { return conns_; }

 private:
  enum class phase { registering, parking, grouping, sending, draining, finishing };
  static const char* name(phase p);

  [[nodiscard]] mark take_mark() const { return bench_util::take_mark(opts.server_pid, true); }
  void begin_idle();
  void begin_sending();
  void begin_draining();
  void check_complete();
  void finish();
  void on_timeout();
  int report();

  net::io_context ioc_;
  std::vector<std::shared_ptr<connection>> conns_;
  std::size_t senders_ = 0;
  std::atomic<phase> phase_{phase::registering};

  std::atomic<std::size_t> logged_in_{0}, relogged_{0}, parked_{0}, closed_{0};
  std::atomic<std::size_t> sends_acked_{0}, delivered_{0}, acks_replied_{0}, drained_{0};
  std::atomic<bool> complete_{false};

  steady::time_point started_;
  run_marks marks_;
  double registered_after_ = 0;
  steady::time_point grouping_begin_;
  std::atomic<std::size_t> next_to_open_{0};
  memory_snapshot mem_before_, mem_after_;

  net::steady_timer timeout_timer_{ioc_};
  net::steady_timer grace_timer_{ioc_};
  std::mutex failure_mutex_;
  std::string failure_;
};

// ---------------------------------------------------------------- connection

crypto::signing_key key_from_seed(const std::string& seed) {
  const auto bytes = crypto::bytes_of(seed);
  return crypto::signing_key::from_seed(std::span<const std::uint8_t, 32>(bytes.data(), 32));
}

connection::connection(bench& b, net::io_context& ioc, std::size_t i, credentials who)
    : index(i),
      mailbox(who.mailbox),
      access_key(who.access_key.empty() ? random_bytes(32) : who.access_key),
      bench_(b),
      strand_(net::make_strand(ioc)),
      socket_(strand_),
      token_(std::move(who.token)),
      key_seed_(who.seed.size() == 32 ? who.seed : random_bytes(32)),
      registered_(!who.mailbox.empty()),
      pace_timer_(strand_) {}

void connection::fail(const std::string& what) {
  bench_.fail("connection " + std::to_string(index) + ": " + what);
}

void connection::do_open(bool do_register) {
  registering_ = do_register;
  closing_ = false;
  close_sent_ = false;
  closed_ = false;
  handshaken_ = false;
  last_seq_ = 0;
  outbox_.clear();
  in_size_ = 0;
  socket_ = tcp::socket(strand_);
  socket_.async_connect(bench_.endpoint(),
                        [self = shared_from_this()](error_code ec) { self->on_connect(ec); });
}

void connection::on_connect(error_code ec) {
  if (ec) return fail("connect failed: " + ec.message());
  socket_.set_option(tcp::no_delay(true), ec);
  outbox_.push_back(ws::handshake_request("127.0.0.1", "/v1/ws"));
  do_write();
  do_read();
}

// A frame is parsed into its thread's arena and dropped once handled, so
// its envelopes cost no malloc and free each: in 1,000-message fan-outs the
// load generator's CPU fell from 5.1 to 3.6 s.
google::protobuf::Arena& frame_arena() {
  thread_local std::vector<char> block(1 << 20);
  thread_local google::protobuf::Arena arena([] {
    google::protobuf::ArenaOptions o;
    o.initial_block = block.data();
    o.initial_block_size = block.size();
    return o;
  }());
  return arena;
}

// Reads whatever the socket holds. The buffer starts small, for the idle
// run's 20,000 connections, and doubles (up to 256 KiB) whenever less than
// half of it is free for the read.
void connection::do_read() {
  constexpr std::size_t k_first_buffer = 4096, k_largest_read = 256 << 10;
  if (in_.empty()) in_.resize(k_first_buffer);
  if (in_.size() - in_size_ < in_.size() / 2 && in_.size() < k_largest_read)
    in_.resize(in_.size() * 2);
  socket_.async_read_some(
      net::buffer(in_.data() + in_size_, in_.size() - in_size_),
      [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void connection::on_read(error_code ec, std::size_t bytes) {
  if (ec) {
    // The server may end the connection without its close frame's reply.
    if (closing_) return report_closed();
    open_ = false;
    return fail("connection lost: " + ec.message());
  }
  // A read that did not fill the buffer took all there was; one that did
  // asks the socket, or its last acks could wait for havend's next ping.
  error_code e;
  const bool emptied = in_size_ + bytes < in_.size() || socket_.available(e) == 0;
  in_size_ += bytes;
  if (!take_frames()) return;
  // One ack names what has arrived: it goes when the batch is full
  // (on_envelope) or nothing more is waiting on the socket.
  if (emptied && ack_frame_.ack().envelopes_size() > 0) flush_acks();
  do_read();
}

// Handles every whole frame read so far and keeps the rest; false once the
// connection is done with (closed, or failed).
bool connection::take_frames() {
  std::size_t at = 0;
  if (!handshaken_) {
    const auto head = ws::handshake_response({reinterpret_cast<const char*>(in_.data()), in_size_});
    if (!head) {
      fail(head.error());
      return false;
    }
    if (*head == 0) return true;
    handshaken_ = true;
    open_ = true;
    at = *head;
  }
  while (true) {
    std::size_t wanted = 0;
    const auto next = ws::next_frame({in_.data() + at, in_size_ - at}, wanted);
    if (!next) {
      fail("havend sent " + next.error());
      return false;
    }
    if (!*next) {
      if (wanted > in_.size()) in_.resize(wanted);  // a message larger than the buffer
      break;
    }
    const auto& f = **next;
    at += f.size;
    if (f.op == ws::opcode::close) {
      on_close_frame(f.payload);
      return false;
    }
    if (f.op == ws::opcode::ping) {
      write_frame(ws::opcode::pong,
                  {reinterpret_cast<const char*>(f.payload.data()), f.payload.size()});
      continue;
    }
    if (f.op != ws::opcode::binary) continue;  // a pong
    auto& arena = frame_arena();
    auto* frame = google::protobuf::Arena::CreateMessage<wire::ServerFrame>(&arena);
    const bool parsed = frame->ParseFromArray(f.payload.data(), static_cast<int>(f.payload.size()));
    if (parsed) handle(*frame);
    arena.Reset();
    if (!parsed) {
      fail("the server sent a frame that is not a ServerFrame");
      return false;
    }
  }
  std::memmove(in_.data(), in_.data() + at, in_size_ - at);
  in_size_ -= at;
  return true;
}

// The server's close frame: the reply to ours, or its own close.
void connection::on_close_frame(std::span<const std::uint8_t> payload) {
  open_ = false;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (closing_) return report_closed();
  std::string why = "the server closed the connection";
  if (payload.size() >= 2)
    why += " with " + std::to_string(payload[0] << 8 | payload[1]) + " \"" +
           std::string(reinterpret_cast<const char*>(payload.data()) + 2, payload.size() - 2) +
           "\"";
  fail(why);
}

void connection::handle(const wire::ServerFrame& f) {
  if (f.has_batch()) {
    for (const auto& inner : f.batch().frames()) {
      if (inner.has_batch() || inner.has_envelopes())
        return fail("a Batch holds a Batch or Envelopes");
      handle(inner);
    }
    return;
  }
  const auto id = f.request_id();
  if (f.has_error()) {
    return fail("server error " + wire::ErrorCode_Name(f.error().code()) + " (\"" +
                f.error().message() + "\") for request " +
                (id == 0              ? std::string("0 (unsolicited)")
                 : (id & k_login_ids) ? std::string(registering_ ? "register" : "log-in")
                 : (id & k_ack_ids)   ? "ack #" + std::to_string((id & ~k_ack_ids) >> 9)
                 : (id & k_group_ids)
                     ? "group change to " + std::to_string(id & ~k_group_ids) + " members"
                     : "send #" + std::to_string(id - 1)));
  }
  if (id == 0) {
    if (f.has_challenge()) return on_challenge(f.challenge());
    if (f.has_envelopes()) {
      for (const auto& e : f.envelopes().envelopes()) on_envelope(e);
      return;
    }
    if (f.has_queue_drained()) {
      if (bench_.draining() && expected_sender != k_none && !drained) {
        if (received != expected)
          return fail("QueueDrained arrived after " + std::to_string(received) + " of " +
                      std::to_string(expected) + " queued envelopes");
        drained = true;
        bench_.on_drained();
      }
      return;
    }
    return fail("unexpected unsolicited frame (body " + std::to_string(f.body_case()) + ")");
  }
  if (id & k_login_ids) {
    if (f.has_registered()) {
      mailbox = f.registered().mailbox_id();
      registered_ = true;
      return bench_.on_logged_in();
    }
    if (f.has_authenticated()) return bench_.on_logged_in();
    return fail("unexpected reply to log-in");
  }
  if (id & k_ack_ids) {
    if (!f.has_acked()) return fail("unexpected reply to an ack");
    if (f.acked().not_found_size() > 0)
      return fail("an ack found no envelope at seq " + std::to_string(f.acked().not_found(0)));
    return bench_.on_ack_replied(id & 511);
  }
  if (id & k_group_ids) {
    const auto members = id & ~k_group_ids;
    if (!f.has_group()) return fail("unexpected reply to a group change");
    if (f.group().members() != members)
      return fail("the group has " + std::to_string(f.group().members()) + " members, expected " +
                  std::to_string(members));
    if (members == bench_.conns().size()) return bench_.on_group_ready();
    return update_group(members);
  }
  if (!f.has_sent()) return fail("unexpected reply to send #" + std::to_string(id - 1));
  on_sent(id - 1);
}

void connection::on_challenge(const wire::AuthChallenge& c) {
  wire::ClientFrame f;
  f.set_request_id(k_login_ids | 1);
  const auto server_id = crypto::bytes_of(c.server_id());
  const auto nonce = crypto::bytes_of(c.nonce());
  const auto key = key_from_seed(key_seed_);
  if (registering_) {
    const auto identity = crypto::signing_key::generate(crypto::system_random());
    auto* r = f.mutable_register_();
    r->set_invite_token(token_);
    r->mutable_identity()->set_signing_key(as_string(identity.public_key()));
    r->mutable_identity()->set_dh_key(dh_key_);
    r->mutable_identity()->set_dh_key_signature(as_string(
        identity.sign(crypto::bytes_of(crypto::identity_dh_message(crypto::bytes_of(dh_key_))))));
    r->set_device_signing_key(as_string(key.public_key()));
    r->set_access_key(access_key);
    r->set_signature(
        as_string(key.sign(crypto::bytes_of(crypto::register_message(server_id, nonce, token_)))));
  } else {
    auto* a = f.mutable_auth();
    a->set_mailbox_id(mailbox);
    a->set_device_id(1);
    a->set_signature(as_string(key.sign(crypto::bytes_of(crypto::auth_message(server_id, nonce)))));
  }
  write(f.SerializeAsString());
}

void connection::on_envelope(const wire::Envelope& e) {
  const auto arrived = now_ns();
  const auto& opts = bench_.opts;
  if (expected == 0) return fail("an envelope arrived for a connection nobody sends to");
  if (e.seq() <= last_seq_)
    return fail("envelope seq " + std::to_string(e.seq()) + " arrived after seq " +
                std::to_string(last_seq_) + " (out of order or repeated)");
  last_seq_ = e.seq();
  const auto& id = e.envelope_id();
  if (id.size() != 16) return fail("pushed envelope id is not 16 bytes");
  std::uint32_t tag = 0, sender = 0;
  std::uint64_t msg = 0;
  std::memcpy(&tag, id.data(), 4);
  std::memcpy(&sender, id.data() + 4, 4);
  std::memcpy(&msg, id.data() + 8, 8);
  const bool from_expected = expected_sender == k_any ? sender < bench_.senders() && sender != index
                                                      : sender == expected_sender;
  if (tag != bench_.run_tag || !from_expected || msg >= opts.messages)
    return fail("received an envelope that was not sent to it (sender " + std::to_string(sender) +
                ", #" + std::to_string(msg) + ")");
  const auto slot = expected_sender == k_any ? sender * opts.messages + msg : msg;
  if (seen_[slot])
    return fail("envelope #" + std::to_string(msg) + " from connection " + std::to_string(sender) +
                " delivered twice (seq " + std::to_string(e.seq()) + ")");
  if (e.sealed().size() != opts.size)
    return fail("envelope #" + std::to_string(msg) + " arrived with " +
                std::to_string(e.sealed().size()) + " bytes, sent " + std::to_string(opts.size));
  seen_[slot] = 1;
  ++received;
  if (!bench_.offline()) {
    std::int64_t sent_at = 0;
    std::memcpy(&sent_at, e.sealed().data(), k_stamp_bytes);
    latencies_ns.push_back(arrived - sent_at);
  }
  auto* delivered = ack_frame_.mutable_ack()->add_envelopes();
  delivered->set_seq(e.seq());
  delivered->set_envelope_id(id);
  bench_.on_delivered();
  if (ack_frame_.ack().envelopes_size() >= static_cast<int>(opts.ack_batch)) flush_acks();
}

// The request id carries the ack's envelope count (at most 256: 9 bits).
void connection::flush_acks() {
  const auto count = static_cast<std::uint64_t>(ack_frame_.ack().envelopes_size());
  ack_frame_.set_request_id(k_ack_ids | (++acks_sent_ << 9) | count);
  write(ack_frame_.SerializeAsString());
  ack_frame_.mutable_ack()->clear_envelopes();
}

void connection::on_sent(std::uint64_t msg) {
  if (msg >= next_ || acked_[msg])
    return fail("SendReply for send #" + std::to_string(msg) + " that is not in flight");
  acked_[msg] = 1;
  --in_flight_;
  ++sends_acked;
  bench_.on_send_acked();
  maybe_send();
}

// Fanout, on connection 0: with `members` (connections 0..members-1) in the
// group, creates it (0) or adds the next connections, presenting each one's
// access key. The reply carries on (handle) until every connection is in.
void connection::update_group(std::size_t members) {
  const auto& all = bench_.conns();
  const auto after = members == 0 ? 1 : std::min(all.size(), members + k_group_changes);
  wire::ClientFrame f;
  f.set_request_id(k_group_ids | after);
  if (members == 0) {
    f.mutable_create_group()->set_group_id(bench_.group_id);
  } else {
    auto* u = f.mutable_update_group();
    u->set_group_id(bench_.group_id);
    for (auto i = members; i < after; ++i) {
      auto* m = u->add_add();
      m->set_mailbox_id(all[i]->mailbox);
      m->set_access_key(all[i]->access_key);
    }
  }
  write(f.SerializeAsString());
}

void connection::do_start_sending() {
  const auto& opts = bench_.opts;
  send_frame_.Clear();
  if (bench_.fanout()) {
    auto* g = send_frame_.mutable_group_send();
    g->set_group_id(bench_.group_id);
    g->set_envelope_id(std::string(16, '\0'));
    g->set_sealed(random_bytes(opts.size));
  } else {
    const auto& to = *bench_.conns()[target];
    auto* s = send_frame_.mutable_send();
    s->set_mailbox_id(to.mailbox);
    s->set_access_key(to.access_key);
    s->set_envelope_id(std::string(16, '\0'));
    auto* m = s->add_messages();
    m->set_device_id(1);
    m->set_sealed(random_bytes(opts.size));
  }
  acked_.assign(opts.messages, 0);
  sending_ = true;
  maybe_send();
}

void connection::maybe_send() {
  if (!sending_ || closing_) return;
  const auto& opts = bench_.opts;
  while (in_flight_ < opts.window && next_ < opts.messages) {
    if (opts.rate > 0) {
      const auto due = pace_due(bench_.send_start(), next_, bench_.senders(), index, opts.rate);
      if (steady::now() < due) {
        if (!pace_armed_) {
          pace_armed_ = true;
          pace_timer_.expires_at(due);
          pace_timer_.async_wait([self = shared_from_this()](error_code ec) {
            self->pace_armed_ = false;
            if (!ec) self->maybe_send();
          });
        }
        return;
      }
    }
    send_one(next_++);
  }
}

void connection::send_one(std::uint64_t msg) {
  send_frame_.set_request_id(msg + 1);
  const bool group = send_frame_.has_group_send();
  auto* id = group ? send_frame_.mutable_group_send()->mutable_envelope_id()
                   : send_frame_.mutable_send()->mutable_envelope_id();
  const std::uint32_t sender = static_cast<std::uint32_t>(index);
  std::memcpy(id->data(), &bench_.run_tag, 4);
  std::memcpy(id->data() + 4, &sender, 4);
  std::memcpy(id->data() + 8, &msg, 8);
  auto* sealed = group ? send_frame_.mutable_group_send()->mutable_sealed()
                       : send_frame_.mutable_send()->mutable_messages(0)->mutable_sealed();
  const std::int64_t sent_at = now_ns();
  std::memcpy(sealed->data(), &sent_at, k_stamp_bytes);
  ++in_flight_;
  write(send_frame_.SerializeAsString());
}

void connection::write_frame(ws::opcode op, std::string_view payload) {
  if (!open_ || close_sent_) return;
  // xorshift64: masks that vary from frame to frame; on loopback they
  // need not be unpredictable.
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 7;
  mask_state_ ^= mask_state_ << 17;
  outbox_.push_back(ws::client_frame(op, payload, static_cast<std::uint32_t>(mask_state_)));
  if (!writing_) do_write();
}

void connection::do_write() {
  writing_ = true;
  net::async_write(socket_, net::buffer(outbox_.front()),
                   [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
}

void connection::on_write(error_code ec) {
  writing_ = false;
  if (ec) {
    if (closing_) return;
    return fail("write failed: " + ec.message());
  }
  outbox_.pop_front();
  if (!outbox_.empty()) return do_write();
  if (closing_) do_close();
}

// Sends a close frame once the outbox is empty; the server's reply
// (take_frames) or the end of the connection completes it.
void connection::do_close() {
  sending_ = false;
  pace_timer_.cancel();
  if (!open_) {
    closing_ = true;
    return report_closed();
  }
  closing_ = true;
  if (writing_ || close_sent_) return;  // on_write closes once the outbox is empty
  const char code[2] = {static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xff)};
  write_frame(ws::opcode::close, {code, 2});
  close_sent_ = true;
}

// Once per close, however it ended.
void connection::report_closed() {
  if (std::exchange(closed_, true)) return;
  bench_.on_closed();
}

// ---------------------------------------------------------------- bench

bench::bench(options o, std::vector<credentials> who)
    : opts(std::move(o)), run_tag([] {
        std::uint32_t t = 0;
        crypto::random_fill({reinterpret_cast<std::uint8_t*>(&t), sizeof t});
        return t;
      }()),
      ioc_(static_cast<int>(opts.threads)) {
  const auto n = opts.connections;
  const std::size_t accounts = offline() ? 2 * n : n;
  senders_ = idle() ? 0 : fanout() ? opts.senders : n;
  for (std::size_t i = 0; i < accounts; ++i)
    conns_.push_back(std::make_shared<connection>(*this, ioc_, i, std::move(who[i])));
  if (fanout()) {
    // Every member hears from every sender but itself.
    for (std::size_t i = 0; i < n; ++i)
      conns_[i]->expect(k_any, senders_ * opts.messages,
                        (senders_ - (i < senders_ ? 1 : 0)) * opts.messages, true);
    return;
  }
  for (std::size_t i = 0; i < senders_; ++i) {
    auto& c = *conns_[i];
    c.target = offline() ? n + i : (i + 1) % n;
    conns_[c.target]->expect(i, opts.messages, opts.messages, !offline());
  }
}

const char* bench::name(phase p) {
  switch (p) {
    case phase::registering: return "registering";
    case phase::parking: return "disconnecting recipients";
    case phase::grouping: return "making the group";
    case phase::sending: return "sending";
    case phase::draining: return "draining";
    case phase::finishing: return "finishing";
  }
  return "?";
}

void bench::fail(std::string why) {
  {
    std::lock_guard lock(failure_mutex_);
    if (!failure_.empty()) return;
    failure_ = std::move(why);
  }
  ioc_.stop();
}

void bench::on_logged_in() {
  if (phase_.load() == phase::draining) {
    ++relogged_;
    return;
  }
  // Opening a few at a time: each log-in lets the next connection open.
  if (const auto next = next_to_open_++; next < conns_.size()) conns_[next]->open();
  if (++logged_in_ != conns_.size()) return;
  registered_after_ = seconds_between(started_, steady::now());
  std::cerr << "loadgen: " << conns_.size() << " connections registered and logged in ("
            << registered_after_ << " s)\n";
  if (idle()) return begin_idle();
  if (fanout()) {
    phase_ = phase::grouping;
    grouping_begin_ = steady::now();
    return conns_[0]->create_group();
  }
  if (!offline()) return begin_sending();
  // Offline: the recipients leave; sending starts once they are gone.
  phase_ = phase::parking;
  for (std::size_t i = senders_; i < conns_.size(); ++i) conns_[i]->close();
}

void bench::on_group_ready() {
  std::cerr << "loadgen: a group of " << conns_.size() << " members made ("
            << seconds_between(grouping_begin_, steady::now()) << " s)\n";
  begin_sending();
}

void bench::on_closed() {
  const auto p = phase_.load();
  if (p == phase::parking) {
    if (++parked_ != conns_.size() - senders_) return;
    // Give the server a moment to drop the closed sessions.
    grace_timer_.expires_after(std::chrono::milliseconds(200));
    grace_timer_.async_wait([this](error_code ec) {
      if (!ec) begin_sending();
    });
    return;
  }
  if (p == phase::finishing && ++closed_ == conns_.size()) ioc_.stop();
}

// Idle: every connection is logged in (and has had its empty queue
// drained); let havend settle, read its memory, and finish.
void bench::begin_idle() {
  grace_timer_.expires_after(std::chrono::duration_cast<steady::duration>(
      std::chrono::duration<double>(opts.settle)));
  grace_timer_.async_wait([this](error_code ec) {
    if (ec) return;
    if (opts.server_pid > 0) mem_after_ = read_memory(opts.server_pid);
    complete_ = true;
    finish();
  });
}

void bench::begin_sending() {
  phase_ = phase::sending;
  marks_.send_begin = take_mark();
  for (std::size_t i = 0; i < senders_; ++i) conns_[i]->start_sending();
}

void bench::on_send_acked() {
  if (++sends_acked_ != total()) return;
  marks_.sends_done = take_mark();
  if (offline()) return begin_draining();
  check_complete();
}

void bench::begin_draining() {
  std::cerr << "loadgen: " << total() << " envelopes queued ("
            << seconds_between(marks_.send_begin.at, marks_.sends_done.at) << " s); draining\n";
  phase_ = phase::draining;
  marks_.drain_begin = take_mark();
  for (std::size_t i = senders_; i < conns_.size(); ++i) conns_[i]->open(false);
}

void bench::on_delivered() {
  if (++delivered_ == deliveries()) marks_.last_delivery = steady::now();
  check_complete();
}
void bench::on_ack_replied(std::size_t envelopes) {
  acks_replied_ += envelopes;
  check_complete();
}
void bench::on_drained() {
  ++drained_;
  check_complete();
}

void bench::check_complete() {
  const auto d = deliveries();
  if (sends_acked_.load() != total() || delivered_.load() != d || acks_replied_.load() != d) return;
  if (offline() && drained_.load() != conns_.size() - senders_) return;
  if (complete_.exchange(true)) return;
  marks_.end = take_mark();
  finish();
}

void bench::finish() {
  phase_ = phase::finishing;
  grace_timer_.expires_after(std::chrono::seconds(3));
  grace_timer_.async_wait([this](error_code ec) {
    if (!ec) ioc_.stop();  // some close handshake hung; the figures are in
  });
  for (auto& c : conns_) c->close();
}

void bench::on_timeout() {
  std::ostringstream why;
  why << "timed out after " << opts.timeout << " s while " << name(phase_.load())
      << ": logged in " << logged_in_.load() << "/" << conns_.size();
  if (offline()) why << ", recipients back " << relogged_.load() << "/" << conns_.size() - senders_;
  why << ", sends acknowledged " << sends_acked_.load() << "/" << total()
      << ", envelopes delivered " << delivered_.load() << "/" << deliveries()
      << ", envelopes acked " << acks_replied_.load() << "/" << deliveries();
  if (offline())
    why << ", queues drained " << drained_.load() << "/" << conns_.size() - senders_;
  fail(why.str());
}

int bench::run() {
  started_ = steady::now();
  timeout_timer_.expires_after(std::chrono::duration_cast<steady::duration>(
      std::chrono::duration<double>(opts.timeout)));
  timeout_timer_.async_wait([this](error_code ec) {
    if (!ec && !complete_.load()) on_timeout();
  });
  if (idle() && opts.server_pid > 0) mem_before_ = read_memory(opts.server_pid);
  const auto first = opts.open_concurrency == 0 ? conns_.size()
                                                : std::min(opts.open_concurrency, conns_.size());
  next_to_open_ = first;
  for (std::size_t i = 0; i < first; ++i) conns_[i]->open();

  std::vector<std::thread> extra;
  for (unsigned i = 1; i < opts.threads; ++i) extra.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : extra) t.join();
  return report();
}

int bench::report() {
  {
    std::lock_guard lock(failure_mutex_);
    if (!failure_.empty()) {
      std::cerr << "haven_loadgen: FAILED: " << failure_ << "\n";
      return 1;
    }
  }
  if (!complete_.load()) {
    std::cerr << "haven_loadgen: FAILED: stopped before the run completed\n";
    return 1;
  }
  if (idle())
    return report_idle({{"system", "havend"}}, opts, conns_.size(), registered_after_, mem_before_,
                       mem_after_, k_words);
  // Every send answered and every envelope delivered once, per connection.
  for (const auto& c : conns_) {
    const bool sender = c->index < senders_;
    if ((sender && c->sends_acked != opts.messages) || c->received != c->expected) {
      std::cerr << "haven_loadgen: FAILED: connection " << c->index << " had "
                << (sender ? std::to_string(c->sends_acked) + " of " +
                                 std::to_string(opts.messages) + " sends acknowledged and "
                           : std::string())
                << c->received << " of " << c->expected << " envelopes delivered\n";
      return 1;
    }
  }

  nlohmann::json j;
  j["system"] = "havend";
  j["connections"] = conns_.size();
  j["threads"] = opts.threads;
  j["register_seconds"] = registered_after_;
  // Where havend's CPU went, thread by thread (the main thread runs the I/O
  // loop; the store's writer and RocksDB's threads are the others).
  const auto& begin = marks_.send_begin.server_threads;
  std::vector<std::pair<double, nlohmann::json>> busy;
  for (const auto& [tid, after] : marks_.end.server_threads) {
    const auto before = begin.find(tid);
    const double used = after.seconds - (before == begin.end() ? 0 : before->second.seconds);
    if (used <= 0) continue;
    busy.emplace_back(used, nlohmann::json{{"tid", tid},
                                           {"name", after.name},
                                           {"main", tid == opts.server_pid},
                                           {"cpu_s", used}});
  }
  std::ranges::sort(busy, std::greater<>{}, &std::pair<double, nlohmann::json>::first);
  j["server_threads"] = nlohmann::json::array();
  for (auto& [_, t] : busy) j["server_threads"].push_back(std::move(t));

  std::vector<std::int64_t> lat;
  for (const auto& c : conns_)
    lat.insert(lat.end(), c->latencies_ns.begin(), c->latencies_ns.end());
  return report_run(std::move(j), opts, senders_, std::move(lat), marks_, k_words,
                    fanout() ? deliveries() : 0);
}

std::string unhex(const std::string& h) {
  if (h.size() % 2 != 0 || h.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw std::runtime_error("not hex: " + h);
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2)
    out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// Invite tokens, one a line, or fill_store's "mailbox seed access_key"
// lines (hex).
std::vector<credentials> read_credentials(const std::string& file, bool accounts) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::vector<credentials> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    credentials c;
    if (accounts) {
      std::string mailbox, seed, access_key;
      if (!(words >> mailbox >> seed >> access_key)) continue;
      c.mailbox = unhex(mailbox);
      c.seed = unhex(seed);
      c.access_key = unhex(access_key);
      if (c.mailbox.size() != 16 || c.seed.size() != 32 || c.access_key.size() != 32)
        throw std::runtime_error(file + ": a line is not 'mailbox seed access_key' in hex");
    } else if (!(words >> c.token)) {
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::ensure_sodium();
  options o;
  CLI::App app{
      "haven_loadgen: drives a running havend on 127.0.0.1 with authenticated WebSocket\n"
      "connections and reports durable-ack sends/s, send-to-delivery latency, drain rate and\n"
      "(fanout) group deliveries/s, or (idle) havend's memory per logged-in connection.\n"
      "Each connection registers with one invite token (havend admin invite ORG --count N)\n"
      "or logs in as an existing account (bench/startup/fill_store --accounts-out FILE).\n"
      "Exits non-zero if any send is not acknowledged or any envelope is not delivered\n"
      "exactly once, or if the run does not finish within --timeout."};
  app.add_option("-p,--port", o.port, "havend's port on 127.0.0.1")->required();
  auto* invites = app.add_option("--invites", o.invites,
                                 "File of invite tokens, one a line (N needed, offline 2N)")
                      ->check(CLI::ExistingFile);
  auto* accounts = app.add_option("--accounts", o.accounts,
                                  "File of existing accounts (fill_store), instead of --invites")
                       ->check(CLI::ExistingFile)
                       ->excludes(invites);
  app.add_option("--mode", o.mode,
                 "online: recipients connected; offline: queue to disconnected recipients, "
                 "then drain; fanout: group messages to every other member of one group; "
                 "idle: log in and measure havend's memory per connection")
      ->capture_default_str()
      ->check(CLI::IsMember({"online", "offline", "fanout", "idle"}));
  auto* connections =
      app.add_option("-n,--connections", o.connections,
                     "Sending connections (offline adds as many recipients; fanout: the group's "
                     "members, default 1000; idle: all of them)")
          ->capture_default_str()
          ->check(CLI::Range(2, 1000000));
  app.add_option("--senders", o.senders, "fanout: members 0..S-1 send --messages each")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("-m,--messages", o.messages, "Envelopes each sending connection sends")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--size", o.size, "Sealed bytes per envelope (at least 8: the send time)")
      ->capture_default_str()
      ->check(CLI::Range(8, 64 << 20));
  app.add_option("-w,--window", o.window, "Unacknowledged sends in flight per connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--ack-batch", o.ack_batch,
                 "Envelopes one ack names at most; a receiver acks what has arrived")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--rate", o.rate, "Total messages/s over all senders, paced; 0 = flat out")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e8));
  app.add_option("--threads", o.threads, "Threads running the client io_context")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--open-concurrency", o.open_concurrency,
                 "Connections opening (connect, log in) at once; 0 = all")
      ->capture_default_str();
  app.add_option("--settle", o.settle, "idle: seconds between the last log-in and the measurement")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  add_output_options(app, o);
  app.add_option("--server-pid", o.server_pid,
                 "havend's pid: report its CPU (and, idle, its memory) from /proc")
      ->check(CLI::Range(1, 1 << 22));
  CLI11_PARSE(app, argc, argv);
  if (invites->count() + accounts->count() != 1) {
    std::cerr << "haven_loadgen: give --invites or --accounts\n";
    return 2;
  }
  if (o.mode == "fanout" && connections->count() == 0) o.connections = 1000;
  if (o.mode == "fanout" && o.senders > o.connections) {
    std::cerr << "haven_loadgen: --senders is more than the " << o.connections << " members\n";
    return 2;
  }

  try {
    const bool use_accounts = accounts->count() > 0;
    auto who = read_credentials(use_accounts ? o.accounts : o.invites, use_accounts);
    const std::size_t needed = o.mode == "offline" ? 2 * o.connections : o.connections;
    if (who.size() < needed) {
      std::cerr << "haven_loadgen: " << (use_accounts ? o.accounts : o.invites) << " holds "
                << who.size() << (use_accounts ? " accounts" : " invite tokens")
                << "; this run needs " << needed << "\n";
      return 2;
    }
    if (o.server_pid > 0 && !process_cpu_seconds(o.server_pid)) {
      std::cerr << "haven_loadgen: cannot read /proc/" << o.server_pid << "/stat\n";
      return 2;
    }
    bench b(o, std::move(who));
    return b.run();
  } catch (const std::exception& e) {
    std::cerr << "haven_loadgen: " << e.what() << "\n";
    return 1;
  }
}
