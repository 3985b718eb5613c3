#include "websocket_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <span>
#include <type_traits>

#include "haven/crypto/verify.hpp"
#include "haven/server/invite_token.hpp"

namespace haven::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

constexpr std::size_t k_id_size = 16;
constexpr std::size_t k_key_size = 32;
constexpr std::size_t k_signature_size = 64;
constexpr std::size_t k_max_devices_per_send = 32;
constexpr std::size_t k_max_one_time_per_upload = 200;
constexpr std::size_t k_max_group_changes = 256;
constexpr std::size_t k_max_acks = 256;
constexpr unsigned k_max_malformed = 3;
// Over TLS a connection waits for its next message with a buffer this
// small; any connection reads this much at a time once bytes are waiting.
constexpr std::size_t k_first_read = 128;
constexpr std::size_t k_busy_read = 16 * 1024;
constexpr std::size_t k_pump_batch = 32;  // envelopes read from the store at a time
constexpr std::size_t k_max_frames_per_message = 64;  // envelopes or batched replies

// A length-delimited protobuf field's header (tag, then length) at `out`;
// returns its end. At most 1 + 10 bytes for the fields written here.
std::uint8_t* write_field_head(int field, std::size_t length, std::uint8_t* out) {
  using google::protobuf::internal::WireFormatLite;
  out = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), out);
  return google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(length, out);
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(const std::string& s) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(s.begin(), std::min(N, s.size()), out.begin());
  return out;
}

template <std::size_t N>
std::string to_string(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Maps a store failure to the error a client sees; never leaks details.
std::pair<wire::ErrorCode, const char*> wire_error(std::error_code ec) {
  if (ec.category() == store::category()) {
    switch (static_cast<store::errc>(ec.value())) {
      case store::errc::invalid_invite: return {wire::ERROR_INVALID_INVITE, "invalid invite"};
      case store::errc::unknown_device: return {wire::ERROR_UNKNOWN_DEVICE, "unknown device"};
      case store::errc::queue_full: return {wire::ERROR_QUEUE_FULL, "recipient queue is full"};
      case store::errc::too_many_prekeys:
        return {wire::ERROR_INVALID_ARGUMENT, "too many one-time prekeys"};
      case store::errc::not_found: return {wire::ERROR_NOT_FOUND, "not found"};
      case store::errc::no_space: return {wire::ERROR_STORAGE_FULL, "server storage is full"};
      case store::errc::shutting_down: return {wire::ERROR_UNAVAILABLE, "server is shutting down"};
      case store::errc::not_owner: return {wire::ERROR_ACCESS_DENIED, "access denied"};
      case store::errc::not_member: return {wire::ERROR_ACCESS_DENIED, "access denied"};
      case store::errc::group_full: return {wire::ERROR_GROUP_FULL, "the group is full"};
      case store::errc::already_exists: return {wire::ERROR_INVALID_ARGUMENT, "that id is taken"};
      default: break;
    }
  }
  return {wire::ERROR_UNAVAILABLE, "storage unavailable"};
}

}  // namespace

template <class Stream>
template <typename T, typename F>
auto websocket_session<Stream>::on_strand(F f) {
  ++pending_;
  return [self = shared_from_this(), f = std::move(f),
          guard = net::make_work_guard(relay_.ioc)](store::result<T> r) mutable {
    net::post(self->stream_.get_executor(),
              [self, f = std::move(f), r = std::move(r)]() mutable {
                f(std::move(r));
                self->request_finished();
              });
  };
}

template <class Stream>
template <typename T, typename Fill>
auto websocket_session<Stream>::answer(std::uint64_t id, Fill fill) {
  return on_strand<T>([this, id, fill = std::move(fill)](store::result<T> done) mutable {
    if (!done) return reply_store_error(id, done.error());
    wire::ServerFrame out;
    out.set_request_id(id);
    if constexpr (std::is_void_v<T>)
      fill(out);
    else
      fill(out, *done);
    reply(out);
  });
}

template <class Stream>
auto websocket_session<Stream>::reply_sent(std::uint64_t id) {
  return answer<std::vector<store::stored_envelope>>(
      id, [](wire::ServerFrame& out, const auto&) { out.mutable_sent(); });
}

template <class Stream>
auto websocket_session<Stream>::reply_members(std::uint64_t id) {
  return answer<std::uint32_t>(id, [](wire::ServerFrame& out, std::uint32_t members) {
    out.mutable_group()->set_members(members);
  });
}

template <class Stream>
websocket_session<Stream>::websocket_session(Stream&& stream, relay& r, std::string peer)
    : stream_(std::move(stream)),
      relay_(r),
      peer_(std::move(peer)),
      timer_(stream_.get_executor()) {}

template <class Stream>
websocket_session<Stream>::~websocket_session() {
  relay_.registry.remove(this, device_key_);
  // Left only if the I/O thread stopped before take_pushes ran.
  for (auto* p = pushes_.exchange(nullptr); p != nullptr;) delete std::exchange(p, p->next);
}

template <class Stream>
void websocket_session<Stream>::run(std::string_view accept_key, std::string_view early) {
  relay_.registry.add(shared_from_this());
  if constexpr (k_plain) {
    error_code ec;
    stream_.non_blocking(true, ec);  // for on_readable's read
    if (ec) return abort();
  }
  // A connection must log in within the handshake timeout, or it goes.
  arm_timer(relay_.cfg.handshake_timeout);
  if (!early.empty()) {
    net::buffer_copy(buffer_.prepare(early.size()), net::buffer(early));
    buffer_.commit(early.size());
  }
  // No Sec-WebSocket-Extensions: permessage-deflate is never on, so no
  // compression bombs and no compressor state per connection.
  auto response = std::make_shared<std::string>(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  response->append(accept_key).append("\r\nServer: havend\r\n\r\n");
  writing_control_ = true;
  net::async_write(stream_, net::buffer(*response),
                   [self = shared_from_this(), response](error_code ec, std::size_t) {
                     self->on_accept(ec);
                   });
}

template <class Stream>
void websocket_session<Stream>::on_accept(error_code ec) {
  writing_control_ = false;
  if (ec) return abort();
  if (closing_) return maybe_close();
  crypto::random_fill(nonce_);
  wire::ServerFrame challenge;
  challenge.mutable_challenge()->set_server_id(to_string(relay_.store.server_id()));
  challenge.mutable_challenge()->set_nonce(to_string(nonce_));
  reply(challenge);
  do_read();
}

template <class Stream>
void websocket_session<Stream>::arm_timer(std::chrono::steady_clock::duration after) {
  // Re-arming cancels the wait before; a wait that had already fired sees
  // the later expiry and does nothing. The timer does not keep the
  // session alive.
  timer_.expires_after(after);
  timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
    if (auto self = weak.lock()) self->on_timer(ec);
  });
}

template <class Stream>
void websocket_session<Stream>::on_timer(error_code ec) {
  if (ec || timer_.expiry() > std::chrono::steady_clock::now()) return;
  if (closing_) {
    spdlog::debug("connection closed: the close did not finish in time");
    return abort();
  }
  if (!address_) return close_when_flushed(ws::close_code::policy_error, "log-in timeout");
  // Keep-alive: a ping after half the idle timeout without a byte from
  // the client, and the end after the other half.
  if (heard_) {
    heard_ = false;
    pinged_ = false;
  } else if (!pinged_) {
    pinged_ = true;
    if (control_.empty()) control_ = ws::control_frame(ws::opcode::ping, {});
    write_control();
  } else {
    spdlog::debug("connection closed: idle past the timeout");
    return abort();
  }
  arm_timer(keep_alive_tick());
}

template <class Stream>
void websocket_session<Stream>::do_read() {
  if (reading_) return;
  reading_ = true;  // also while frames are taken, so that none re-enters
  while (!read_done_) {
    if (!closing_ && pending_ >= relay_.cfg.max_pending_requests) break;  // request_finished
    const auto in = std::span(static_cast<std::uint8_t*>(buffer_.data().data()), buffer_.size());
    const auto event = reader_.next(in, relay_.cfg.max_frame_bytes);
    if (!event) {
      if (event.error().code == ws::close_code::too_big)
        spdlog::info("connection closed: frame over {} bytes", relay_.cfg.max_frame_bytes);
      else
        spdlog::debug("connection closed: {}", event.error().reason);
      read_done_ = true;
      close_when_flushed(event.error().code, event.error().reason);
      break;
    }
    if (event->kind == ws::event::need_more) {
      buffer_.consume(event->used);
      // An idle connection keeps no buffer between messages.
      if (buffer_.size() == 0 && !read_filled_) buffer_.shrink_to_fit();
      if constexpr (k_plain) {
        // A plain socket is waited on with no buffer, then read once with
        // room for many frames: one read per message where a read into a
        // buffer would take a small read, the rest, and a read that finds
        // nothing (Asio tries a read first, before waiting).
        read_size_ = std::max(event->wanted, k_busy_read);
        if (!read_filled_) return wait_readable();
      } else {
        // Over TLS, bytes may wait in OpenSSL rather than on the socket,
        // so a read is always in flight, small while the client is idle.
        // The rest of a frame is read with 128 bytes to spare: if even
        // those fill, the client has more waiting, and its next reads take
        // many frames at a time.
        read_size_ = read_filled_ ? std::max(event->wanted, k_busy_read)
                     : event->wanted > 0 && buffer_.size() > 0 ? event->wanted + k_first_read
                                                               : k_first_read;
      }
      stream_.async_read_some(
          buffer_.prepare(read_size_),
          beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
      return;
    }
    const bool go_on = take(*event);
    buffer_.consume(event->used);
    if (!go_on) break;
  }
  reading_ = false;
  // Nothing is read after the client's close frame or a broken frame: the
  // buffer goes now, not once the close handshake and the teardown are over.
  if (read_done_) {
    buffer_.clear();
    buffer_.shrink_to_fit();
  }
}

template <class Stream>
void websocket_session<Stream>::wait_readable() {
  if constexpr (k_plain) {
    stream_.async_wait(
        net::socket_base::wait_read,
        beast::bind_front_handler(&websocket_session::on_readable, shared_from_this()));
  }
}

template <class Stream>
void websocket_session<Stream>::on_readable(error_code ec) {
  if constexpr (k_plain) {
    if (ec) return on_read(ec, 0);
    // The socket is non-blocking (run), so this read never waits.
    const auto bytes = stream_.read_some(buffer_.prepare(read_size_), ec);
    if (ec == net::error::would_block) return wait_readable();
    on_read(ec, bytes);
  }
}

template <class Stream>
void websocket_session<Stream>::on_read(error_code ec, std::size_t bytes) {
  reading_ = false;
  if (ec) {
    if (!closing_) spdlog::debug("connection ended: {}", ec.message());
    return abort();
  }
  buffer_.commit(bytes);
  read_filled_ = bytes == read_size_ && read_size_ > k_first_read;
  heard_ = true;
  do_read();
}

template <class Stream>
bool websocket_session<Stream>::take(const ws::event& event) {
  switch (event.kind) {
    case ws::event::message:
      if (!closing_) handle_message(event.payload, event.text);
      return true;
    case ws::event::ping:
      // After our close frame, nothing more may be sent.
      if (!close_sent_) {
        control_ = ws::control_frame(ws::opcode::pong, event.payload);
        write_control();
      }
      return true;
    case ws::event::close:
      read_done_ = true;
      if (!closing_) {
        closing_ = true;
        close_code_ = event.code;  // echoed, as RFC 6455 asks
        arm_timer(relay_.cfg.handshake_timeout);
      }
      maybe_close();
      return false;
    default: return true;  // a pong: heard_ is set already
  }
}

template <class Stream>
void websocket_session<Stream>::handle_message(std::span<const std::uint8_t> message, bool text) {
  if (text) {
    reply_error(0, wire::ERROR_MALFORMED_FRAME, "text frames are not accepted; send binary");
    close_when_flushed(ws::close_code::unknown_data, "binary frames only");
    return;
  }
  wire::ClientFrame frame;
  if (!frame.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    reply_error(0, wire::ERROR_MALFORMED_FRAME, "frame is not a ClientFrame");
    if (++malformed_ >= k_max_malformed)
      close_when_flushed(ws::close_code::protocol_error, "too many malformed frames");
    return;
  }
  handle(frame);
}

template <class Stream>
void websocket_session<Stream>::handle(wire::ClientFrame& frame) {
  const auto id = frame.request_id();
  if (id == 0)
    return reply_error(0, wire::ERROR_INVALID_ARGUMENT, "request_id must be non-zero");
  using body = wire::ClientFrame;
  const auto kind = frame.body_case();
  if (kind == body::BODY_NOT_SET)
    return reply_error(id, wire::ERROR_UNKNOWN_REQUEST, "unknown or missing request body");
  if (kind == body::kRegister) return handle_register(id, frame.register_());
  if (kind == body::kAuth) return handle_auth(id, frame.auth());
  if (kind == body::kVaultHeader) return handle_vault_header(id, frame.vault_header());
  if (kind == body::kVaultOpen) return handle_vault_open(id, frame.vault_open());
  if (!address_) return reply_error(id, wire::ERROR_NOT_AUTHENTICATED, "log in first");
  switch (kind) {
    case body::kUploadPrekeys: return handle_upload_prekeys(id, frame.upload_prekeys());
    case body::kFetchPrekeys: return handle_fetch_prekeys(id, frame.fetch_prekeys());
    case body::kSend: return handle_send(id, *frame.mutable_send());
    case body::kAck: return handle_ack(id, frame.ack());
    case body::kVaultStore: return handle_vault_store(id, *frame.mutable_vault_store());
    case body::kCreateGroup: return handle_create_group(id, frame.create_group());
    case body::kUpdateGroup: return handle_update_group(id, frame.update_group());
    case body::kGroupSend: return handle_group_send(id, *frame.mutable_group_send());
    case body::kPing: {
      wire::ServerFrame pong;
      pong.set_request_id(id);
      pong.mutable_pong();
      return reply(pong);
    }
    default: return reply_error(id, wire::ERROR_UNKNOWN_REQUEST, "unknown request");
  }
}

// ---------------------------------------------------------------- log-in

template <class Stream>
void websocket_session<Stream>::handle_register(std::uint64_t id, const wire::RegisterRequest& r) {
  if (address_) return reply_error(id, wire::ERROR_ALREADY_AUTHENTICATED, "already logged in");
  if (nonce_spent_)
    return reply_error(id, wire::ERROR_AUTH_FAILED, "challenge already used; reconnect");
  nonce_spent_ = true;
  if (!relay_.logins.allow(peer_))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "too many attempts; wait and retry");

  const auto& identity = r.identity();
  if (identity.signing_key().size() != k_key_size || identity.dh_key().size() != k_key_size ||
      r.device_signing_key().size() != k_key_size || r.access_key().size() != k_key_size ||
      r.signature().size() != k_signature_size || r.invite_token().size() > 64)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "a key or signature has the wrong size");
  if (!crypto::verify_ed25519(crypto::bytes_of(identity.signing_key()),
                              crypto::bytes_of(crypto::identity_dh_message(
                                  crypto::bytes_of(identity.dh_key()))),
                              crypto::bytes_of(identity.dh_key_signature())))
    return reply_error(id, wire::ERROR_BAD_SIGNATURE, "identity key signature does not verify");
  const auto message = crypto::register_message(relay_.store.server_id(), nonce_, r.invite_token());
  if (!crypto::verify_ed25519(crypto::bytes_of(r.device_signing_key()), crypto::bytes_of(message),
                              crypto::bytes_of(r.signature())))
    return reply_error(id, wire::ERROR_AUTH_FAILED, "registration signature does not verify");
  const auto token = normalise_invite_token(r.invite_token());
  if (!token) return reply_error(id, wire::ERROR_INVALID_INVITE, "invalid invite");

  store::new_account account;
  crypto::random_fill(account.mailbox);
  account.identity = identity;
  account.device_signing_key = to_array<32>(r.device_signing_key());
  account.access_key_hash = crypto::hash256(crypto::bytes_of(r.access_key()));
  account.created_at = unix_now();
  const auto mailbox = account.mailbox;
  relay_.store.register_account(
      invite_token_hash(*token), std::move(account),
      on_strand<store::AccountRecord>([this, id, mailbox](store::result<store::AccountRecord> rec) {
        if (!rec) return reply_store_error(id, rec.error());
        wire::ServerFrame out;
        out.set_request_id(id);
        auto* body = out.mutable_registered();
        body->set_mailbox_id(to_string(mailbox));
        body->set_device_id(1);
        body->set_role(rec->role());
        if (auto orgs = relay_.store.list_orgs())
          for (const auto& org : *orgs)
            if (org.org_id() == rec->org_id()) body->set_organisation(org.name());
        spdlog::info("account registered");
        reply(out);
        logged_in({mailbox, 1}, rec->role());
      }));
}

template <class Stream>
void websocket_session<Stream>::handle_auth(std::uint64_t id, const wire::AuthRequest& r) {
  if (address_) return reply_error(id, wire::ERROR_ALREADY_AUTHENTICATED, "already logged in");
  if (nonce_spent_)
    return reply_error(id, wire::ERROR_AUTH_FAILED, "challenge already used; reconnect");
  nonce_spent_ = true;
  if (!relay_.logins.allow(peer_))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "too many attempts; wait and retry");
  if (r.mailbox_id().size() != k_id_size || r.signature().size() != k_signature_size)
    return reply_error(id, wire::ERROR_AUTH_FAILED, "log-in failed");

  const store::device_address address{to_array<16>(r.mailbox_id()), r.device_id()};
  auto account = relay_.store.find_account(address.mailbox);
  const store::DeviceRecord* device = nullptr;
  if (account)
    for (const auto& d : account->devices())
      if (d.device_id() == r.device_id()) device = &d;
  const auto message = crypto::auth_message(relay_.store.server_id(), nonce_);
  // One answer for unknown mailbox, unknown device and bad signature.
  if (device == nullptr ||
      !crypto::verify_ed25519(crypto::bytes_of(device->signing_key()), crypto::bytes_of(message),
                              crypto::bytes_of(r.signature())))
    return reply_error(id, wire::ERROR_AUTH_FAILED, "log-in failed");

  wire::ServerFrame out;
  out.set_request_id(id);
  out.mutable_authenticated()->set_role(account->role());
  reply(out);
  logged_in(address, account->role());
}

template <class Stream>
void websocket_session<Stream>::logged_in(const store::device_address& address, wire::Role) {
  address_ = address;
  device_key_ = session_registry::key(address);
  // The log-in deadline gives way to keep-alive, unless the close's is set.
  if (!closing_) arm_timer(keep_alive_tick());
  // One connection per device: the newer one wins, the older is closed.
  if (auto previous = relay_.registry.bind(device_key_, shared_from_this()))
    previous->shutdown(ws::close_code::policy_error, "logged in elsewhere");
  more_in_store_ = true;
  pump();
}

// ---------------------------------------------------------------- requests

template <class Stream>
bool websocket_session<Stream>::access_allowed(const std::string& mailbox,
                                               const std::string& access_key) {
  if (mailbox.size() != k_id_size || access_key.size() != k_key_size) return false;
  const auto stored = relay_.store.find_access_key_hash(to_array<16>(mailbox));
  const auto presented = crypto::hash256(crypto::bytes_of(access_key));
  // Compare against a dummy for unknown mailboxes so timing does not tell.
  const std::array<std::uint8_t, 32> dummy{};
  return crypto::equal_constant_time(presented, stored ? *stored : dummy) && stored.has_value();
}

template <class Stream>
void websocket_session<Stream>::handle_upload_prekeys(std::uint64_t id,
                                                      const wire::UploadPrekeysRequest& r) {
  auto account = relay_.store.find_account(address_->mailbox);
  if (!account) return reply_error(id, wire::ERROR_UNAVAILABLE, "account unavailable");
  const auto& identity_key = account->identity().signing_key();
  const auto verify = [&](const wire::SignedPrekey& k, wire::PrekeyKind kind) {
    return k.public_key().size() == k_key_size &&
           crypto::verify_ed25519(
               crypto::bytes_of(identity_key),
               crypto::bytes_of(crypto::prekey_message(static_cast<std::uint8_t>(kind), k.id(),
                                                       crypto::bytes_of(k.public_key()))),
               crypto::bytes_of(k.signature()));
  };
  if (r.has_signed_prekey() && !verify(r.signed_prekey(), wire::PREKEY_KIND_SIGNED))
    return reply_error(id, wire::ERROR_BAD_SIGNATURE, "signed prekey does not verify");
  if (r.has_last_resort() && !verify(r.last_resort(), wire::PREKEY_KIND_LAST_RESORT))
    return reply_error(id, wire::ERROR_BAD_SIGNATURE, "last-resort prekey does not verify");
  if (static_cast<std::size_t>(r.one_time_size()) > k_max_one_time_per_upload)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "at most 200 one-time prekeys per upload");
  for (const auto& k : r.one_time())
    if (k.public_key().size() != k_key_size)
      return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "a one-time prekey has the wrong size");

  relay_.store.upload_prekeys(
      *address_, r, answer<std::uint32_t>(id, [](wire::ServerFrame& out, std::uint32_t held) {
        out.mutable_prekeys_uploaded()->set_one_time_stored(held);
      }));
}

template <class Stream>
void websocket_session<Stream>::handle_fetch_prekeys(std::uint64_t id,
                                                     const wire::FetchPrekeysRequest& r) {
  if (!relay_.prekey_fetches.allow(to_string(address_->mailbox)))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "too many prekey fetches; wait and retry");
  if (!access_allowed(r.mailbox_id(), r.access_key()))
    return reply_error(id, wire::ERROR_ACCESS_DENIED, "access denied");
  relay_.store.claim_prekeys(
      to_array<16>(r.mailbox_id()),
      answer<wire::PrekeyBundle>(id, [](wire::ServerFrame& out, wire::PrekeyBundle& bundle) {
        *out.mutable_prekey_bundle() = std::move(bundle);
      }));
}

template <class Stream>
void websocket_session<Stream>::handle_send(std::uint64_t id, wire::SendRequest& r) {
  if (r.envelope_id().size() != k_id_size)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "envelope_id must be 16 bytes");
  if (r.messages().empty() || static_cast<std::size_t>(r.messages_size()) > k_max_devices_per_send)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "name between 1 and 32 devices");
  std::set<std::uint32_t> devices;
  for (const auto& m : r.messages()) {
    if (m.sealed().empty())
      return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "empty sealed envelope");
    if (!devices.insert(m.device_id()).second)
      return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "a device is named twice");
  }
  if (!relay_.sends.allow(to_string(address_->mailbox)))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "sending too fast; wait and retry");
  if (!access_allowed(r.mailbox_id(), r.access_key()))
    return reply_error(id, wire::ERROR_ACCESS_DENIED, "access denied");

  std::vector<store::device_envelope> envelopes;
  envelopes.reserve(static_cast<std::size_t>(r.messages_size()));
  for (auto& m : *r.mutable_messages())
    envelopes.push_back({m.device_id(), std::move(*m.mutable_sealed())});
  // Connected devices get the envelope as soon as it is written, while the
  // WAL syncs; the sender's answer waits for the sync.
  relay_.store.enqueue(
      to_array<16>(r.mailbox_id()), to_array<16>(r.envelope_id()), std::move(envelopes),
      unix_now(),
      reply_sent(id), relay_.deliver_when_written());
}

template <class Stream>
void websocket_session<Stream>::handle_ack(std::uint64_t id, const wire::AckRequest& r) {
  const auto count = static_cast<std::size_t>(r.envelopes_size());
  if (count == 0 || count > k_max_acks)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "an ack names 1 to 256 envelopes");
  std::vector<store::delivered_envelope> envelopes;
  envelopes.reserve(count);
  for (const auto& e : r.envelopes()) {
    if (e.envelope_id().size() != k_id_size)
      return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "envelope_id must be 16 bytes");
    envelopes.push_back({e.seq(), to_array<16>(e.envelope_id())});
  }
  // The delivery window frees at once; the deletes themselves are group-committed.
  const auto freed = std::erase_if(in_flight_, [&](std::uint64_t seq) {
    return std::ranges::find(envelopes, seq, &store::delivered_envelope::seq) != envelopes.end();
  });
  if (freed > 0) pump();
  relay_.store.ack(*address_, std::move(envelopes),
                   answer<std::vector<std::uint64_t>>(
                       id, [](wire::ServerFrame& out, const std::vector<std::uint64_t>& not_found) {
                         out.mutable_acked()->mutable_not_found()->Add(not_found.begin(),
                                                                       not_found.end());
                       }));
}

// ---------------------------------------------------------------- groups

template <class Stream>
void websocket_session<Stream>::handle_create_group(std::uint64_t id,
                                                    const wire::CreateGroupRequest& r) {
  if (r.group_id().size() != k_id_size)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "group_id must be 16 bytes");
  relay_.store.create_group(to_array<16>(r.group_id()), address_->mailbox, unix_now(),
                            reply_members(id));
}

template <class Stream>
void websocket_session<Stream>::handle_update_group(std::uint64_t id,
                                                    const wire::UpdateGroupRequest& r) {
  const auto changes = static_cast<std::size_t>(r.add_size() + r.remove_size());
  if (r.group_id().size() != k_id_size || changes == 0 || changes > k_max_group_changes)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT,
                       "group_id 16 bytes and between 1 and 256 changes");
  std::vector<store::member_change> add;
  add.reserve(static_cast<std::size_t>(r.add_size()));
  for (const auto& m : r.add()) {
    // Nobody is put in a group without their access key, as for a send.
    if (!access_allowed(m.mailbox_id(), m.access_key()))
      return reply_error(id, wire::ERROR_ACCESS_DENIED, "access denied");
    add.push_back({to_array<16>(m.mailbox_id()), m.facilitator()});
  }
  std::vector<store::mailbox_id> remove;
  remove.reserve(static_cast<std::size_t>(r.remove_size()));
  for (const auto& m : r.remove()) {
    if (m.size() != k_id_size)
      return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "mailbox ids are 16 bytes");
    remove.push_back(to_array<16>(m));
  }
  relay_.store.update_group(to_array<16>(r.group_id()), address_->mailbox, std::move(add),
                            std::move(remove),
                            reply_members(id));
}

template <class Stream>
void websocket_session<Stream>::handle_group_send(std::uint64_t id, wire::GroupSendRequest& r) {
  if (r.envelope_id().size() != k_id_size || r.group_id().size() != k_id_size)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT,
                       "envelope_id and group_id must be 16 bytes");
  if (r.sealed().empty()) return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "empty sealed body");
  if (!relay_.sends.allow(to_string(address_->mailbox)))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "sending too fast; wait and retry");
  relay_.store.enqueue_group(
      to_array<16>(r.group_id()), *address_, to_array<16>(r.envelope_id()),
      std::move(*r.mutable_sealed()), unix_now(),
      reply_sent(id), relay_.deliver_when_written());
}

template <class Stream>
void websocket_session<Stream>::request_finished() {
  --pending_;
  if (closing_) return maybe_close();
  do_read();
}

// ---------------------------------------------------------------- vault

template <class Stream>
void websocket_session<Stream>::handle_vault_store(std::uint64_t id, wire::VaultStoreRequest& r) {
  if (r.vault_id().size() != k_id_size || r.auth_verifier().size() != k_key_size ||
      r.header().size() > 64 || r.sealed().empty())
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT,
                       "vault_id 16 bytes, auth_verifier 32, header at most 64, sealed non-empty");
  relay_.store.store_vault(address_->mailbox, to_array<16>(r.vault_id()),
                           std::move(*r.mutable_header()), to_array<32>(r.auth_verifier()),
                           std::move(*r.mutable_sealed()),
                           answer<void>(id, [](wire::ServerFrame& out) {
                             out.mutable_vault_stored();
                           }));
}

template <class Stream>
void websocket_session<Stream>::handle_vault_header(std::uint64_t id,
                                                    const wire::VaultHeaderRequest& r) {
  if (!relay_.logins.allow(peer_))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "too many attempts; wait and retry");
  if (r.vault_id().size() != k_id_size)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "vault_id must be 16 bytes");
  auto found = relay_.store.find_vault(to_array<16>(r.vault_id()), relay_.cfg.vault_max_failures);
  if (!found) return reply_store_error(id, found.error());
  wire::ServerFrame out;
  out.set_request_id(id);
  out.mutable_vault_header()->set_header(found->header);
  out.mutable_vault_header()->set_tries_left(found->tries_left);
  reply(out);
}

template <class Stream>
void websocket_session<Stream>::handle_vault_open(std::uint64_t id,
                                                  const wire::VaultOpenRequest& r) {
  if (!relay_.logins.allow(peer_))
    return reply_error(id, wire::ERROR_RATE_LIMITED, "too many attempts; wait and retry");
  if (r.vault_id().size() != k_id_size || r.auth_key().size() != k_key_size)
    return reply_error(id, wire::ERROR_INVALID_ARGUMENT, "vault_id 16 bytes, auth_key 32");
  relay_.store.open_vault(
      to_array<16>(r.vault_id()), crypto::hash256(crypto::bytes_of(r.auth_key())),
      relay_.cfg.vault_max_failures,
      on_strand<store::vault_opening>([this, id](store::result<store::vault_opening> opening) {
        if (!opening) return reply_store_error(id, opening.error());
        if (!opening->opened) {
          spdlog::info("wrong vault passphrase ({} tries left)", opening->tries_left);
          if (opening->tries_left == 0)
            return reply_error(id, wire::ERROR_NOT_FOUND,
                               "wrong passphrase; the vault has been destroyed");
          return reply_error(id, wire::ERROR_AUTH_FAILED,
                             "wrong passphrase; " + std::to_string(opening->tries_left) +
                                 " tries left");
        }
        wire::ServerFrame out;
        out.set_request_id(id);
        out.mutable_vault_opened()->set_sealed(std::move(opening->sealed));
        reply(out);
      }));
}

// ---------------------------------------------------------------- delivery

void relay::deliver(const std::vector<store::stored_envelope>& stored) {
  for (const auto& s : stored)
    if (auto session = registry.find(session_registry::key(s.address)))
      session->push(s.envelope.seq, s.envelope.frame);
}

template <class Stream>
void websocket_session<Stream>::push(std::uint64_t seq, store::push_frame frame) {
  auto* added = new pending_push{seq, std::move(frame), pushes_.load(std::memory_order_relaxed)};
  // `added` is take_pushes' once published: only the local `older` is read after.
  auto* older = added->next;
  while (!pushes_.compare_exchange_weak(older, added, std::memory_order_release,
                                        std::memory_order_relaxed))
    added->next = older;
  // The handler posted for the oldest waiting push takes this one too.
  if (older != nullptr) return;
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->take_pushes(); });
}

template <class Stream>
void websocket_session<Stream>::take_pushes() {
  pending_push* oldest = nullptr;  // the list reversed
  for (auto* p = pushes_.exchange(nullptr, std::memory_order_acquire); p != nullptr;) {
    auto* newer = p;
    p = p->next;
    newer->next = std::exchange(oldest, newer);
  }
  bool queued = false;
  bool from_store = false;
  while (oldest != nullptr) {
    const std::unique_ptr<pending_push> push(std::exchange(oldest, oldest->next));
    const auto seq = push->seq;
    if (!address_ || closing_ || seq <= delivered_seq_) continue;
    const bool next_in_line = !more_in_store_ && seq == delivered_seq_ + 1;
    if (next_in_line && in_flight_.size() < relay_.cfg.delivery_window && !outbox_busy()) {
      delivered_seq_ = seq;
      in_flight_.push_back(seq);
      queue({std::move(push->frame), true});
      queued = true;
    } else {
      more_in_store_ = true;  // read it, and anything before it, from the store
      from_store = true;
    }
  }
  if (queued) start_writing();
  if (from_store) pump();
}

template <class Stream>
void websocket_session<Stream>::pump() {
  if (!address_ || closing_) return;
  const auto window = relay_.cfg.delivery_window;
  // Pushes pause while the outbox is half full and resume as it drains, so
  // a large backlog never trips the slow-reader cap of a healthy client.
  // The window is refilled a batch at a time, not an envelope per ack, so
  // pushes go out many to a frame whatever way the client acks.
  const auto refill = std::min(window, k_pump_batch);
  while (more_in_store_ && window - in_flight_.size() >= refill && !outbox_busy()) {
    // Read no more than the outbox can take before it is busy again.
    const auto want = std::min<std::size_t>(window - in_flight_.size(), k_pump_batch);
    const auto budget = relay_.cfg.outbound_buffer_bytes / 2 - outbox_bytes_;
    auto batch = relay_.store.read_queue(*address_, delivered_seq_, want, budget);
    if (!batch) {
      spdlog::error("reading a queue failed: {}", batch.error().message());
      return close_when_flushed(ws::close_code::try_again_later, "storage unavailable");
    }
    std::size_t bytes = 0;
    for (auto& e : *batch) {
      bytes += e.frame.size();
      delivered_seq_ = e.seq;
      in_flight_.push_back(e.seq);
      queue({std::move(e.frame), true});
    }
    start_writing();
    // A short read that was not cut by the budget reached the end.
    if (batch->size() < want && bytes < budget) more_in_store_ = false;
  }
  if (!more_in_store_ && !drained_sent_) {
    drained_sent_ = true;
    wire::ServerFrame drained;
    drained.mutable_queue_drained();
    reply(drained);
  }
}

// ---------------------------------------------------------------- output

template <class Stream>
void websocket_session<Stream>::reply(const wire::ServerFrame& frame) {
  auto bytes = std::make_shared<std::string>();
  frame.SerializeToString(bytes.get());
  send({{std::move(bytes), nullptr}, false});
}

template <class Stream>
void websocket_session<Stream>::reply_error(std::uint64_t id, wire::ErrorCode code,
                                            std::string_view text) {
  wire::ServerFrame frame;
  frame.set_request_id(id);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(std::string(text));
  reply(frame);
}

template <class Stream>
void websocket_session<Stream>::reply_store_error(std::uint64_t id, std::error_code ec) {
  const auto [code, text] = wire_error(ec);
  reply_error(id, code, text);
}

template <class Stream>
void websocket_session<Stream>::queue(outgoing_frame frame) {
  if (close_sent_) return;
  // Pushes stop at half the cap (outbox_busy), so at most one push waits
  // beyond it; what grows past the cap beyond that are replies the client
  // does not read. The outbox holds at most the cap, the write in flight
  // and a few frames.
  const auto waiting = outbox_bytes_ - writing_bytes_;
  if (waiting > relay_.cfg.outbound_buffer_bytes + relay_.cfg.max_frame_bytes) {
    spdlog::info("connection closed: reader too slow ({} bytes waiting)", waiting);
    return abort();
  }
  outbox_bytes_ += frame.size();
  outbox_.push_back(std::move(frame));
}

template <class Stream>
void websocket_session<Stream>::send(outgoing_frame frame) {
  queue(std::move(frame));
  start_writing();
}

template <class Stream>
void websocket_session<Stream>::start_writing() {
  if (writing_ > 0 || writing_control_) return;
  // A control frame goes between messages, ahead of those waiting.
  if (!control_.empty()) return write_control();
  if (!outbox_.empty()) do_write();
}

template <class Stream>
bool websocket_session<Stream>::outbox_busy() const noexcept {
  return outbox_bytes_ >= relay_.cfg.outbound_buffer_bytes / 2;
}

template <class Stream>
void websocket_session<Stream>::do_write() {
  // Frames waiting side by side go out as one WebSocket message, so many
  // replies cost one write: a run of envelopes as an Envelopes frame (the
  // concatenation of their stored bytes, store.hpp), a run of other frames
  // as a Batch (each behind its field header). Neither is copied.
  constexpr std::size_t frame_head_max = 1 + 5;  // Batch.frames: tag 1, varint32 length
  const bool envelopes = outbox_[0].envelope;
  const auto head_size = [&](std::size_t size) -> std::size_t {
    return envelopes ? 0 : 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size);
  };
  std::size_t count = 0;
  std::size_t bytes = 0;    // of the frames
  std::size_t message = 0;  // of the Envelopes or Batch field
  for (; count < outbox_.size() && count < k_max_frames_per_message &&
         outbox_[count].envelope == envelopes;
       ++count) {
    const auto size = outbox_[count].size();
    if (count > 0 && message + head_size(size) + size > relay_.cfg.max_frame_bytes) break;
    bytes += size;
    message += head_size(size) + size;
  }
  writing_ = count;
  writing_bytes_ = bytes;
  write_buffers_.clear();
  write_next_ = 0;
  if (!envelopes && count == 1) {
    const auto& only = *outbox_[0].bytes.head;
    write_buffers_.emplace_back(
        frame_head_.data(), ws::write_head(ws::opcode::binary, only.size(), frame_head_.data()));
    write_buffers_.push_back(net::buffer(only));
    return write_rest();
  }
  const auto* end = write_field_head(
      envelopes ? wire::ServerFrame::kEnvelopesFieldNumber : wire::ServerFrame::kBatchFieldNumber,
      message, message_head_.data());
  const auto message_head = static_cast<std::size_t>(end - message_head_.data());
  write_buffers_.emplace_back(
      frame_head_.data(),
      ws::write_head(ws::opcode::binary, message_head + message, frame_head_.data()));
  write_buffers_.emplace_back(message_head_.data(), message_head);
  // Sized up front: the buffers point into it.
  batch_heads_.resize(envelopes ? 0 : count * frame_head_max);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& frame = outbox_[i].bytes;
    if (!envelopes) {
      auto* head = batch_heads_.data() + i * frame_head_max;
      const auto* head_end = write_field_head(wire::Batch::kFramesFieldNumber, frame.size(), head);
      write_buffers_.emplace_back(head, static_cast<std::size_t>(head_end - head));
    }
    write_buffers_.push_back(net::buffer(*frame.head));
    if (frame.body) write_buffers_.push_back(net::buffer(*frame.body));
  }
  write_rest();
}

// Our own loop rather than net::async_write: Boost 1.74's async_write
// hands the socket at most 16 buffers a call, so a push of 32 group
// envelopes (a head and the shared body each) took five sendmsg calls;
// async_write_some takes up to 64.
template <class Stream>
void websocket_session<Stream>::write_rest() {
  stream_.async_write_some(
      std::span<const net::const_buffer>(write_buffers_).subspan(write_next_),
      beast::bind_front_handler(&websocket_session::on_written_some, shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_written_some(error_code ec, std::size_t bytes) {
  if (ec) return on_write(ec);
  // Past what went out, and past empty buffers, which would never go.
  while (write_next_ < write_buffers_.size()) {
    auto& buffer = write_buffers_[write_next_];
    if (bytes < buffer.size()) {
      buffer += bytes;
      break;
    }
    bytes -= buffer.size();
    ++write_next_;
  }
  if (write_next_ < write_buffers_.size()) return write_rest();
  on_write({});
}

template <class Stream>
void websocket_session<Stream>::on_write(error_code ec) {
  const auto written = std::exchange(writing_, 0);
  const auto written_bytes = std::exchange(writing_bytes_, 0);
  if (ec) {
    spdlog::debug("connection ended: writing failed: {}", ec.message());
    return abort();
  }
  outbox_bytes_ -= written_bytes;
  outbox_.pop_front(written);  // the oldest went out; FIFO order is kept
  // Start the next write before refilling: send() starts one only when
  // none is in flight, and a stream takes one write at a time.
  start_writing();
  if (more_in_store_ && !outbox_busy()) pump();
  if (closing_) maybe_close();
}

template <class Stream>
void websocket_session<Stream>::write_control() {
  if (writing_ > 0 || writing_control_ || control_.empty()) return;
  writing_control_ = true;
  // The frame moves into the write, so that control_ can hold the next
  // one (a newer pong replaces a waiting one) without touching it.
  auto frame = std::make_shared<std::string>(std::exchange(control_, {}));
  net::async_write(stream_, net::buffer(*frame),
                   [self = shared_from_this(), frame](error_code ec, std::size_t) {
                     self->on_control_written(ec);
                   });
}

template <class Stream>
void websocket_session<Stream>::on_control_written(error_code ec) {
  writing_control_ = false;
  if (ec) {
    spdlog::debug("connection ended: writing failed: {}", ec.message());
    return abort();
  }
  if (close_sent_) return maybe_close();
  start_writing();
  if (closing_) maybe_close();
}

template <class Stream>
void websocket_session<Stream>::shutdown(ws::close_code code, std::string_view reason) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), code, reason = std::string(reason)] {
              self->close_when_flushed(code, reason);
            });
}

template <class Stream>
void websocket_session<Stream>::close_when_flushed(ws::close_code code, std::string_view reason) {
  if (!closing_) {
    spdlog::debug("closing a connection: {}", reason);
    closing_ = true;
    close_code_ = code;
    close_text_ = reason;
    arm_timer(relay_.cfg.handshake_timeout);  // for the flush and the close handshake
  }
  maybe_close();
}

template <class Stream>
void websocket_session<Stream>::maybe_close() {
  if (finished_) return;
  if (!close_sent_) {
    // Answer every request already taken, write everything queued, then close.
    if (pending_ > 0 || writing_ > 0 || writing_control_ || !outbox_.empty()) return;
    close_sent_ = true;
    control_ = ws::close_frame(close_code_, close_text_);
    return write_control();
  }
  if (writing_control_) return;  // the close frame is on its way
  if (read_done_) return finish();
  do_read();  // the client's close frame is still to come; what comes first is dropped
}

template <class Stream>
void websocket_session<Stream>::finish() {
  finished_ = true;
  // Plain TCP: a FIN, then whatever the client still sends is read away
  // until it closes too, so it never meets a reset. TLS: close_notify.
  // The close deadline bounds both.
  using websocket::async_teardown;  // and Beast's for its ssl_stream, found by ADL
  async_teardown(beast::role_type::server, stream_,
                 [self = shared_from_this()](error_code) { self->abort(); });
}

template <class Stream>
void websocket_session<Stream>::abort() {
  closing_ = true;
  close_sent_ = true;
  read_done_ = true;
  finished_ = true;
  // A write in flight still reads the outbox; on_write clears it then.
  if (writing_ == 0) {
    outbox_.clear();
    outbox_bytes_ = 0;
  }
  timer_.cancel();
  error_code ignored;
  beast::get_lowest_layer(stream_).close(ignored);
}

template class websocket_session<plain_stream>;
template class websocket_session<tls_stream>;

}  // namespace haven::server
