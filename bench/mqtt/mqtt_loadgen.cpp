// mqtt_loadgen: the MQTT counterpart of haven_loadgen, for comparing havend
// with a broker (Mosquitto) under load of the same shape.
//
// Same runs, same flags and the same JSON result as haven_loadgen:
//
//   online:  N clients; client i publishes to client (i+1) % N's topic and
//            subscribes (QoS 1) to its own. At most --window publishes per
//            client are unacknowledged (PUBACK not yet received).
//   offline: N publishers and N subscribers with persistent sessions
//            (clean_session = false). The subscribers subscribe and
//            disconnect, the publishers publish everything (the broker
//            queues it), then the subscribers reconnect and drain.
//   fanout:  N clients (default 1,000) subscribe (QoS 1) to one topic;
//            clients 0..S-1 (--senders) publish to it. MQTT 5 here, for
//            its no-local subscriptions: as in a havend group, a message
//            reaches every member but its sender (N - 1 deliveries).
//   idle:    N clients connect and subscribe, then sit idle while the
//            broker's memory is measured (--server-pid). These are plain
//            sockets speaking MQTT 3.1.1 CONNECT/SUBSCRIBE by hand:
//            libmosquitto holds two more descriptors per client (its
//            wake-up socketpair), which would cap one process at a third
//            of the open-file limit.
//
// Every message is 1 KiB (--size) of QoS 1 payload; its first bytes hold
// the send time (steady_clock ns), sender, index and a run tag, so the
// receiver measures send-to-delivery latency and checks that every message
// arrives exactly once. Both ends live in this process, so the clocks agree.
//
// One thread drives every client through epoll with libmosquitto's
// external-loop calls (mosquitto_loop_read/write/misc), as haven_loadgen
// drives its connections from one Asio thread.

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using namespace haven::bench_util;

constexpr std::size_t k_header_bytes = 24;  // stamp(8) sender(4) index(8) tag(4)
constexpr std::size_t k_none = static_cast<std::size_t>(-1);
constexpr std::size_t k_any = k_none - 1;  // fanout: every publisher but oneself
constexpr int k_keepalive_s = 60;
constexpr summary_words k_words{"mqtt_loadgen",
                                "publishers",
                                ", QoS 1",
                                "PUBACKed publishes",
                                "broker",
                                "every publish acknowledged, every message delivered exactly once",
                                "clients connected and subscribed",
                                "both ends"};

struct options : load_options {
  // fanout (MQTT 5): a client's Receive Maximum overrides the broker's
  // max_inflight_messages, and libmosquitto asks for 20.
  int receive_maximum = 128;
};

class bench;

struct client {
  bench* owner = nullptr;
  mosquitto* m = nullptr;
  std::size_t index = 0;
  std::string id;
  std::string topic;  // subscribes to this
  bool subscriber = false;
  bool publisher = false;
  int fd = -1;
  bool out_armed = false;
  bool leaving = false;  // disconnect asked by us

  // Publishing.
  std::size_t target = k_none;
  std::string target_topic;
  std::uint64_t next = 0;
  std::size_t in_flight = 0;
  std::size_t acked = 0;

  // Receiving.
  std::size_t expected_sender = k_none;  // k_any: every publisher but this client
  std::size_t expected = 0;              // messages it should receive
  std::vector<std::uint8_t> seen;        // per publisher and index (fanout) or index
  std::size_t received = 0;
  std::vector<std::int64_t> latencies_ns;
};

class bench {
 public:
  explicit bench(options o);
  ~bench();
  int run();

  // libmosquitto callbacks.
  void on_connect(client& c, int rc);
  void on_disconnect(client& c, int rc);
  void on_subscribe(client& c);
  void on_publish(client& c);
  void on_message(client& c, const mosquitto_message& msg);

 private:
  enum class phase { connecting, parking, sending, draining, done };

  void fail(std::string why) {
    if (failure_.empty()) failure_ = std::move(why);
  }
  [[nodiscard]] bool offline() const { return opts_.mode == "offline"; }
  [[nodiscard]] bool fanout() const { return opts_.mode == "fanout"; }
  [[nodiscard]] std::size_t total() const { return senders_ * opts_.messages; }
  // Messages delivered in all: fanout, each to every client but its publisher.
  [[nodiscard]] std::size_t deliveries() const {
    return fanout() ? total() * (clients_.size() - 1) : total();
  }
  [[nodiscard]] mark take_mark() const {
    return haven::bench_util::take_mark(opts_.server_pid, false);
  }

  void connect(client& c, bool first);
  void watch(client& c);
  void service(client& c, std::uint32_t events);
  void flush(client& c);
  void maybe_send(client& c);
  void send_one(client& c);
  [[nodiscard]] steady::time_point due(const client& c) const;
  void check_phase();
  void begin_sending();
  int report();

  options opts_;
  std::uint32_t run_tag_ = 0;
  int epoll_ = -1;
  std::vector<std::unique_ptr<client>> clients_;
  std::size_t senders_ = 0;
  phase phase_ = phase::connecting;
  std::string failure_;
  std::string payload_;

  std::size_t ready_ = 0, parked_ = 0, reconnected_ = 0;
  std::size_t acked_ = 0, delivered_ = 0;
  steady::time_point started_, parked_at_;
  run_marks marks_;
  double connected_after_ = 0;
};

client& of(void* obj) { return *static_cast<client*>(obj); }

bench::bench(options o) : opts_(std::move(o)) {
  std::random_device rd;
  run_tag_ = rd();
  payload_.assign(opts_.size, '\0');
  std::mt19937 fill(rd());
  for (auto& ch : payload_) ch = static_cast<char>(fill());
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) throw std::runtime_error("epoll_create1 failed");

  const auto n = opts_.connections;
  const std::size_t count = offline() ? 2 * n : n;
  senders_ = fanout() ? opts_.senders : n;
  std::ostringstream tag;
  tag << std::hex << run_tag_;
  for (std::size_t i = 0; i < count; ++i) {
    auto c = std::make_unique<client>();
    c->owner = this;
    c->index = i;
    c->id = "hb-" + tag.str() + "-" + std::to_string(i);
    c->topic = "bench/" + tag.str() + "/" + (fanout() ? "group" : std::to_string(i));
    c->subscriber = !offline() || i >= n;
    c->publisher = i < senders_;
    // Offline subscribers keep their session (and their queue) while away.
    c->m = mosquitto_new(c->id.c_str(), !(offline() && c->subscriber), c.get());
    if (c->m == nullptr) throw std::runtime_error("mosquitto_new failed");
    if (fanout()) {
      mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
      mosquitto_int_option(c->m, MOSQ_OPT_RECEIVE_MAXIMUM, opts_.receive_maximum);
    } else {
      mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    }
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    // The window is counted here; the library's own limit only backs it up.
    mosquitto_max_inflight_messages_set(c->m, static_cast<unsigned>(opts_.window));
    mosquitto_connect_callback_set(c->m, [](mosquitto*, void* obj, int rc) {
      of(obj).owner->on_connect(of(obj), rc);
    });
    mosquitto_disconnect_callback_set(c->m, [](mosquitto*, void* obj, int rc) {
      of(obj).owner->on_disconnect(of(obj), rc);
    });
    mosquitto_subscribe_callback_set(c->m, [](mosquitto*, void* obj, int, int, const int*) {
      of(obj).owner->on_subscribe(of(obj));
    });
    mosquitto_publish_callback_set(c->m, [](mosquitto*, void* obj, int) {
      of(obj).owner->on_publish(of(obj));
    });
    mosquitto_message_callback_set(c->m, [](mosquitto*, void* obj, const mosquitto_message* msg) {
      of(obj).owner->on_message(of(obj), *msg);
    });
    clients_.push_back(std::move(c));
  }
  if (fanout()) {
    for (auto& c : clients_) {
      if (c->publisher) c->target_topic = c->topic;
      c->expected_sender = k_any;
      c->expected = (senders_ - (c->publisher ? 1 : 0)) * opts_.messages;
      c->seen.assign(senders_ * opts_.messages, 0);
      c->latencies_ns.reserve(c->expected);
    }
    return;
  }
  for (std::size_t i = 0; i < senders_; ++i) {
    auto& c = *clients_[i];
    c.target = offline() ? n + i : (i + 1) % n;
    c.target_topic = clients_[c.target]->topic;
    auto& r = *clients_[c.target];
    r.expected_sender = i;
    r.expected = opts_.messages;
    r.seen.assign(opts_.messages, 0);
    if (!offline()) r.latencies_ns.reserve(opts_.messages);
  }
}

bench::~bench() {
  for (auto& c : clients_)
    if (c->m != nullptr) mosquitto_destroy(c->m);
  if (epoll_ >= 0) close(epoll_);
}

void bench::connect(client& c, bool first) {
  const int rc = first ? mosquitto_connect(c.m, "127.0.0.1", opts_.port, k_keepalive_s)
                       : mosquitto_reconnect(c.m);
  if (rc != MOSQ_ERR_SUCCESS) {
    fail("client " + std::to_string(c.index) + ": connect failed: " +
         (rc == MOSQ_ERR_ERRNO ? std::string(std::strerror(errno)) : mosquitto_strerror(rc)));
    return;
  }
  c.leaving = false;
  watch(c);
}

void bench::watch(client& c) {
  c.fd = mosquitto_socket(c.m);
  c.out_armed = false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &c;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
    fail("epoll_ctl ADD failed: " + std::string(std::strerror(errno)));
  flush(c);
}

// Writes what libmosquitto has queued (packets queued inside callbacks, or
// left over from a full socket), arming EPOLLOUT while some remains.
void bench::flush(client& c) {
  if (c.fd < 0 || mosquitto_socket(c.m) != c.fd) return;
  if (mosquitto_want_write(c.m)) {
    const int rc = mosquitto_loop_write(c.m, 1);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && !c.leaving)
      return fail("client " + std::to_string(c.index) + ": write failed: " + mosquitto_strerror(rc));
  }
  if (c.fd < 0 || mosquitto_socket(c.m) != c.fd) return;
  const bool want = mosquitto_want_write(c.m);
  if (want == c.out_armed) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  c.out_armed = want;
}

void bench::service(client& c, std::uint32_t events) {
  if (c.fd < 0) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    // One packet per call: read until the socket is empty.
    for (int i = 0; i < 512 && c.fd >= 0; ++i) {
      errno = 0;
      const int rc = mosquitto_loop_read(c.m, 1);
      if (rc != MOSQ_ERR_SUCCESS) {
        if (!c.leaving && failure_.empty())
          fail("client " + std::to_string(c.index) + ": connection lost: " + mosquitto_strerror(rc));
        if (c.fd >= 0) {
          epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
          c.fd = -1;
        }
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    }
  }
  if (c.publisher) maybe_send(c);
  flush(c);
}

void bench::on_connect(client& c, int rc) {
  if (rc != 0) return fail("client " + std::to_string(c.index) + ": CONNACK refused: " +
                           mosquitto_connack_string(rc));
  if (phase_ == phase::draining) {
    ++reconnected_;  // the persistent session keeps the subscription
    return;
  }
  if (c.subscriber) {
    // Fanout: not to one's own messages (MQTT 5 no-local).
    const int sub = fanout() ? mosquitto_subscribe_v5(c.m, nullptr, c.topic.c_str(), 1,
                                                      MQTT_SUB_OPT_NO_LOCAL, nullptr)
                             : mosquitto_subscribe(c.m, nullptr, c.topic.c_str(), 1);
    if (sub != MOSQ_ERR_SUCCESS) fail("client " + std::to_string(c.index) + ": subscribe failed");
    return;
  }
  ++ready_;
}

void bench::on_subscribe(client&) { ++ready_; }

void bench::on_disconnect(client& c, int rc) {
  if (c.fd >= 0) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);  // closed by now; harmless
    c.fd = -1;
  }
  if (c.leaving) {
    if (phase_ == phase::parking) ++parked_;
    return;
  }
  if (phase_ != phase::done)
    fail("client " + std::to_string(c.index) + ": disconnected (" + mosquitto_strerror(rc) + ")");
}

void bench::on_publish(client& c) {
  if (c.in_flight == 0) return fail("client " + std::to_string(c.index) + ": PUBACK for nothing");
  --c.in_flight;
  ++c.acked;
  if (++acked_ == total()) marks_.sends_done = take_mark();
}

void bench::on_message(client& c, const mosquitto_message& msg) {
  const auto arrived = now_ns();
  if (static_cast<std::size_t>(msg.payloadlen) != opts_.size || msg.qos != 1)
    return fail("client " + std::to_string(c.index) + ": message of " +
                std::to_string(msg.payloadlen) + " bytes at QoS " + std::to_string(msg.qos));
  const auto* p = static_cast<const char*>(msg.payload);
  std::int64_t sent_at = 0;
  std::uint32_t sender = 0, tag = 0;
  std::uint64_t index = 0;
  std::memcpy(&sent_at, p, 8);
  std::memcpy(&sender, p + 8, 4);
  std::memcpy(&index, p + 12, 8);
  std::memcpy(&tag, p + 20, 4);
  const bool from_expected = c.expected_sender == k_any ? sender < senders_ && sender != c.index
                                                        : sender == c.expected_sender;
  if (tag != run_tag_ || !from_expected || index >= opts_.messages)
    return fail("client " + std::to_string(c.index) + ": a message that was not sent to it");
  const auto slot = c.expected_sender == k_any ? sender * opts_.messages + index : index;
  if (c.seen[slot])
    return fail("client " + std::to_string(c.index) + ": message #" + std::to_string(index) +
                " from " + std::to_string(sender) + " delivered twice");
  c.seen[slot] = 1;
  ++c.received;
  if (++delivered_ == deliveries()) marks_.last_delivery = steady::now();
  if (!offline()) c.latencies_ns.push_back(arrived - sent_at);
}

steady::time_point bench::due(const client& c) const {
  return pace_due(marks_.send_begin.at, c.next, senders_, c.index, opts_.rate);
}

void bench::maybe_send(client& c) {
  if (phase_ != phase::sending || !c.publisher || c.fd < 0) return;
  while (c.in_flight < opts_.window && c.next < opts_.messages) {
    if (opts_.rate > 0 && steady::now() < due(c)) return;
    send_one(c);
  }
}

void bench::send_one(client& c) {
  const std::int64_t stamp = now_ns();
  const std::uint32_t sender = static_cast<std::uint32_t>(c.index);
  const std::uint64_t index = c.next++;
  std::memcpy(payload_.data(), &stamp, 8);
  std::memcpy(payload_.data() + 8, &sender, 4);
  std::memcpy(payload_.data() + 12, &index, 8);
  std::memcpy(payload_.data() + 20, &run_tag_, 4);
  ++c.in_flight;
  const int rc = mosquitto_publish(c.m, nullptr, c.target_topic.c_str(),
                                   static_cast<int>(payload_.size()), payload_.data(), 1, false);
  if (rc != MOSQ_ERR_SUCCESS)
    fail("client " + std::to_string(c.index) + ": publish failed: " + mosquitto_strerror(rc));
}

void bench::begin_sending() {
  phase_ = phase::sending;
  marks_.send_begin = take_mark();
  for (std::size_t i = 0; i < senders_; ++i) {
    maybe_send(*clients_[i]);
    flush(*clients_[i]);
  }
}

void bench::check_phase() {
  switch (phase_) {
    case phase::connecting:
      if (ready_ != clients_.size()) return;
      connected_after_ = seconds_between(started_, steady::now());
      std::cerr << "mqtt_loadgen: " << clients_.size() << " clients connected ("
                << connected_after_ << " s)\n";
      if (!offline()) return begin_sending();
      // Offline: the subscribers leave; their sessions stay on the broker.
      phase_ = phase::parking;
      for (std::size_t i = senders_; i < clients_.size(); ++i) {
        auto& c = *clients_[i];
        c.leaving = true;
        mosquitto_disconnect(c.m);
        flush(c);
      }
      return;
    case phase::parking:
      if (parked_ != clients_.size() - senders_) return;
      if (parked_at_ == steady::time_point{}) parked_at_ = steady::now();
      // Give the broker a moment to take the sessions offline.
      if (steady::now() - parked_at_ < std::chrono::milliseconds(200)) return;
      return begin_sending();
    case phase::sending:
      if (acked_ != total()) return;
      if (offline()) {
        std::cerr << "mqtt_loadgen: " << total() << " messages queued ("
                  << seconds_between(marks_.send_begin.at, marks_.sends_done.at)
                  << " s); draining\n";
        phase_ = phase::draining;
        marks_.drain_begin = take_mark();
        for (std::size_t i = senders_; i < clients_.size(); ++i) connect(*clients_[i], false);
        return;
      }
      [[fallthrough]];
    case phase::draining:
      if (acked_ != total() || delivered_ != deliveries()) return;
      marks_.end = take_mark();
      phase_ = phase::done;
      return;
    case phase::done: return;
  }
}

int bench::run() {
  started_ = steady::now();
  const auto deadline =
      started_ + std::chrono::nanoseconds(static_cast<std::int64_t>(opts_.timeout * 1e9));
  for (auto& c : clients_) {
    connect(*c, true);
    if (!failure_.empty()) break;
  }

  std::vector<epoll_event> events(1024);
  auto next_misc = steady::now() + std::chrono::seconds(1);
  while (failure_.empty() && phase_ != phase::done) {
    auto wake = std::min(next_misc, deadline);
    if (phase_ == phase::parking) wake = std::min(wake, steady::now() + std::chrono::milliseconds(10));
    if (phase_ == phase::sending && opts_.rate > 0)
      for (std::size_t i = 0; i < senders_; ++i)
        if (clients_[i]->next < opts_.messages && clients_[i]->in_flight < opts_.window)
          wake = std::min(wake, due(*clients_[i]));
    const auto wait = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(wake - steady::now()).count());
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    const int n = epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    if (n < 0 && errno != EINTR) {
      fail("epoll_pwait2 failed: " + std::string(std::strerror(errno)));
      break;
    }
    for (int i = 0; i < n; ++i) service(*static_cast<client*>(events[i].data.ptr), events[i].events);
    const auto now = steady::now();
    if (phase_ == phase::sending && opts_.rate > 0)
      for (std::size_t i = 0; i < senders_; ++i) {
        maybe_send(*clients_[i]);
        flush(*clients_[i]);
      }
    if (now >= next_misc) {
      for (auto& c : clients_)
        if (c->fd >= 0) mosquitto_loop_misc(c->m);  // keep-alive pings
      next_misc = now + std::chrono::seconds(1);
    }
    check_phase();
    if (now >= deadline && phase_ != phase::done) {
      std::ostringstream why;
      why << "timed out after " << opts_.timeout << " s: ready " << ready_ << "/" << clients_.size()
          << ", PUBACKs " << acked_ << "/" << total() << ", delivered " << delivered_ << "/"
          << deliveries();
      fail(why.str());
    }
  }

  // Leave politely; the figures are in.
  phase_ = phase::done;
  for (auto& c : clients_)
    if (c->fd >= 0) {
      c->leaving = true;
      mosquitto_disconnect(c->m);
    }
  return report();
}

int bench::report() {
  if (!failure_.empty()) {
    std::cerr << "mqtt_loadgen: FAILED: " << failure_ << "\n";
    return 1;
  }
  for (const auto& c : clients_) {
    if ((c->publisher && c->acked != opts_.messages) || c->received != c->expected) {
      std::cerr << "mqtt_loadgen: FAILED: client " << c->index << " had "
                << (c->publisher ? std::to_string(c->acked) + " of " +
                                       std::to_string(opts_.messages) + " PUBACKs and "
                                 : std::string())
                << c->received << " of " << c->expected << " messages delivered\n";
      return 1;
    }
  }
  nlohmann::json j;
  j["system"] = "mosquitto";
  j["connections"] = clients_.size();
  j["register_seconds"] = connected_after_;
  std::vector<std::int64_t> lat;
  for (const auto& c : clients_)
    lat.insert(lat.end(), c->latencies_ns.begin(), c->latencies_ns.end());
  return report_run(std::move(j), opts_, senders_, std::move(lat), marks_, k_words,
                    fanout() ? deliveries() : 0);
}

// ---------------------------------------------------------------- idle

void put_string(std::string& out, std::string_view s) {
  out += static_cast<char>(s.size() >> 8);
  out += static_cast<char>(s.size() & 0xff);
  out += s;
}

// A packet with a fixed header byte and a variable-length remaining length.
std::string packet(std::uint8_t header, const std::string& body) {
  std::string out(1, static_cast<char>(header));
  std::size_t n = body.size();
  do {
    auto digit = static_cast<std::uint8_t>(n % 128);
    n /= 128;
    if (n > 0) digit |= 0x80;
    out += static_cast<char>(digit);
  } while (n > 0);
  return out + body;
}

// CONNECT: clean session, keep-alive 60 s.
std::string connect_packet(const std::string& id) {
  std::string connect;
  put_string(connect, "MQTT");
  connect += '\x04';  // protocol level: 3.1.1
  connect += '\x02';  // clean session
  connect += static_cast<char>(k_keepalive_s >> 8);
  connect += static_cast<char>(k_keepalive_s & 0xff);
  put_string(connect, id);
  return packet(0x10, connect);
}

// SUBSCRIBE to `topic` at QoS 1 (packet id 1).
std::string subscribe_packet(const std::string& topic) {
  std::string subscribe("\x00\x01", 2);
  put_string(subscribe, topic);
  subscribe += '\x01';
  return packet(0x82, subscribe);
}

// Connections waiting for their answers, at most, so the broker's accept
// backlog never overflows (a dropped SYN costs a one-second retry).
constexpr std::size_t k_idle_pending = 128;

// CONNACK accepted, then SUBACK granting QoS 1.
constexpr std::string_view k_idle_answer("\x20\x02\x00\x00\x90\x03\x00\x01\x01", 9);

int run_idle(const options& o) {
  const auto started = steady::now();
  const auto deadline = started + std::chrono::nanoseconds(static_cast<std::int64_t>(o.timeout * 1e9));
  memory_snapshot before, after;
  if (o.server_pid > 0) before = read_memory(o.server_pid);
  std::random_device rd;
  std::ostringstream tag;
  tag << std::hex << rd();

  struct idle_client {
    int fd = -1;
    std::size_t got = 0;
  };
  std::vector<idle_client> clients(o.connections);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(o.port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::size_t ready = 0;
  std::string failure;
  const auto topic_of = [&](std::uint64_t i) { return "bench/" + tag.str() + "/" + std::to_string(i); };
  std::vector<epoll_event> events(1024);
  const auto poll_once = [&](int timeout_ms) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      auto& c = clients[events[i].data.u64];
      char buf[64];
      const auto r = read(c.fd, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        failure = "a connection was closed by the broker";
        return;
      }
      if (c.got + static_cast<std::size_t>(r) > k_idle_answer.size() ||
          std::string_view(buf, static_cast<std::size_t>(r)) !=
              k_idle_answer.substr(c.got, static_cast<std::size_t>(r))) {
        failure = "the broker did not accept CONNECT and SUBSCRIBE";
        return;
      }
      const bool had_connack = c.got >= 4;
      c.got += static_cast<std::size_t>(r);
      if (!had_connack && c.got >= 4) {
        const auto sub = subscribe_packet(topic_of(events[i].data.u64));
        if (write(c.fd, sub.data(), sub.size()) != static_cast<ssize_t>(sub.size())) {
          failure = "writing SUBSCRIBE failed";
          return;
        }
      }
      if (c.got == k_idle_answer.size()) ++ready;
    }
  };
  for (std::size_t i = 0; i < clients.size() && failure.empty(); ++i) {
    auto& c = clients[i];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
      failure = "connection " + std::to_string(i) + " failed: " + std::strerror(errno);
      break;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto hello = connect_packet("hb-" + tag.str() + "-" + std::to_string(i));
    if (write(c.fd, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size())) {
      failure = "writing CONNECT failed";
      break;
    }
    const int flags = fcntl(c.fd, F_GETFL);
    fcntl(c.fd, F_SETFL, flags | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    while (failure.empty() && i + 1 - ready >= k_idle_pending && steady::now() < deadline) poll_once(10);
  }
  while (failure.empty() && ready < clients.size()) {
    if (steady::now() > deadline) {
      failure = "timed out: " + std::to_string(ready) + " of " + std::to_string(clients.size()) +
                " connected and subscribed";
      break;
    }
    poll_once(100);
  }
  const double connected_after = seconds_between(started, steady::now());
  if (failure.empty()) {
    std::cerr << "mqtt_loadgen: " << clients.size() << " clients connected and subscribed ("
              << connected_after << " s)\n";
    std::this_thread::sleep_for(std::chrono::duration<double>(o.settle));
    if (o.server_pid > 0) after = read_memory(o.server_pid);
  }
  for (auto& c : clients)
    if (c.fd >= 0) {
      static constexpr char disconnect[] = {'\xe0', '\x00'};
      [[maybe_unused]] auto ignored = write(c.fd, disconnect, sizeof disconnect);
      close(c.fd);
    }
  close(ep);
  if (!failure.empty()) {
    std::cerr << "mqtt_loadgen: FAILED: " << failure << "\n";
    return 1;
  }

  return report_idle({{"system", "mosquitto"}}, o, clients.size(), connected_after, before, after,
                     k_words);
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{
      "mqtt_loadgen: drives an MQTT broker on 127.0.0.1 with load of the same shape as\n"
      "haven_loadgen (QoS 1, same window, size, count and pacing) and prints the same\n"
      "figures. Exits non-zero unless every publish is acknowledged and every message\n"
      "delivered exactly once within --timeout."};
  app.add_option("-p,--port", o.port, "The broker's port on 127.0.0.1")->required();
  app.add_option("--mode", o.mode,
                 "online: subscribers connected; offline: queue for persistent sessions, "
                 "then drain; fanout: every client subscribes to one topic, --senders publish; "
                 "idle: connect, subscribe and measure the broker's memory")
      ->capture_default_str()
      ->check(CLI::IsMember({"online", "offline", "fanout", "idle"}));
  auto* connections = app.add_option("-n,--connections", o.connections,
                                     "Publishing clients (offline adds as many subscribers; "
                                     "fanout: subscribers, default 1000)")
                          ->capture_default_str()
                          ->check(CLI::Range(2, 1000000));
  app.add_option("--senders", o.senders, "fanout: clients 0..S-1 publish --messages each")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_option("-m,--messages", o.messages, "Messages each publisher sends")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--size", o.size, "Payload bytes (at least 24: stamp, sender, index, tag)")
      ->capture_default_str()
      ->check(CLI::Range(24, 64 << 20));
  app.add_option("-w,--window", o.window, "Publishes without PUBACK per client, at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--receive-maximum", o.receive_maximum,
                 "fanout: MQTT 5 Receive Maximum each client asks for (in-flight deliveries; "
                 "bench/run.sh passes havend's delivery window)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--rate", o.rate, "Total messages/s over all publishers, paced; 0 = flat out")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e8));
  app.add_option("--settle", o.settle, "idle: seconds to wait before measuring")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  add_output_options(app, o);
  app.add_option("--server-pid", o.server_pid,
                 "The broker's pid: report its CPU (and, idle, its memory) from /proc")
      ->check(CLI::Range(1, 1 << 22));
  CLI11_PARSE(app, argc, argv);
  if (o.mode == "fanout" && connections->count() == 0) o.connections = 1000;
  if (o.mode == "fanout" && o.senders > o.connections) {
    std::cerr << "mqtt_loadgen: --senders is more than the " << o.connections << " clients\n";
    return 2;
  }

  mosquitto_lib_init();
  int rc = 1;
  try {
    if (o.server_pid > 0 && !process_cpu_seconds(o.server_pid)) {
      std::cerr << "mqtt_loadgen: cannot read /proc/" << o.server_pid << "/stat\n";
      return 2;
    }
    if (o.mode == "idle") {
      rc = run_idle(o);
    } else {
      bench b(o);
      rc = b.run();
    }
  } catch (const std::exception& e) {
    std::cerr << "mqtt_loadgen: " << e.what() << "\n";
  }
  mosquitto_lib_cleanup();
  return rc;
}
