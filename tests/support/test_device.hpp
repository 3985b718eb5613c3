#pragma once
// A test user's device: real Ed25519 keys, and the frames to register, log
// in, send and ack as the wire protocol defines them.

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "haven/crypto/signing.hpp"
#include "haven/crypto/verify.hpp"
#include "havend_process.hpp"
#include "ws_client.hpp"

namespace haven::test {

inline std::string random_string(std::size_t n) {
  std::string s(n, '\0');
  crypto::random_fill({reinterpret_cast<std::uint8_t*>(s.data()), n});
  return s;
}

inline std::string sig_string(const crypto::ed25519_signature& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

inline std::string key_string(const crypto::ed25519_public_key& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}

struct test_device {
  crypto::signing_key identity = crypto::signing_key::generate(crypto::system_random());
  crypto::signing_key key = crypto::signing_key::generate(crypto::system_random());
  std::string dh_key = random_string(32);
  std::string access_key = random_string(32);
  std::string mailbox;
  std::uint32_t device_id = 1;

  wire::ClientFrame register_frame(const wire::AuthChallenge& c, const std::string& token) const {
    wire::ClientFrame f;
    auto* r = f.mutable_register_();
    r->set_invite_token(token);
    r->mutable_identity()->set_signing_key(key_string(identity.public_key()));
    r->mutable_identity()->set_dh_key(dh_key);
    r->mutable_identity()->set_dh_key_signature(
        sig_string(identity.sign(crypto::bytes_of(crypto::identity_dh_message(crypto::bytes_of(dh_key))))));
    r->set_device_signing_key(key_string(key.public_key()));
    r->set_access_key(access_key);
    r->set_signature(sig_string(key.sign(crypto::bytes_of(crypto::register_message(
        crypto::bytes_of(c.server_id()), crypto::bytes_of(c.nonce()), token)))));
    return f;
  }

  wire::ClientFrame auth_frame(const wire::AuthChallenge& c) const {
    wire::ClientFrame f;
    f.mutable_auth()->set_mailbox_id(mailbox);
    f.mutable_auth()->set_device_id(device_id);
    f.mutable_auth()->set_signature(sig_string(key.sign(crypto::bytes_of(
        crypto::auth_message(crypto::bytes_of(c.server_id()), crypto::bytes_of(c.nonce()))))));
    return f;
  }

  // Registers on `client` with `token`; the reply (registered or error).
  wire::ServerFrame register_on(ws_client& client, const std::string& token) {
    auto reply = client.request(register_frame(client.challenge, token));
    if (reply.has_registered()) mailbox = reply.registered().mailbox_id();
    return reply;
  }

  wire::ServerFrame login_on(ws_client& client) const {
    return client.request(auth_frame(client.challenge));
  }

  // A send of `sealed` to `to`'s device 1 with `to`'s access key.
  static wire::ClientFrame send_frame(const test_device& to, const std::string& sealed,
                                      std::string envelope_id = random_string(16)) {
    wire::ClientFrame f;
    auto* s = f.mutable_send();
    s->set_envelope_id(std::move(envelope_id));
    s->set_mailbox_id(to.mailbox);
    s->set_access_key(to.access_key);
    auto* m = s->add_messages();
    m->set_device_id(to.device_id);
    m->set_sealed(sealed);
    return f;
  }

  static wire::ClientFrame ack_frame(std::initializer_list<wire::Envelope> envelopes) {
    wire::ClientFrame f;
    for (const auto& e : envelopes) {
      auto* d = f.mutable_ack()->add_envelopes();
      d->set_seq(e.seq());
      d->set_envelope_id(e.envelope_id());
    }
    return f;
  }
  static wire::ClientFrame ack_frame(const wire::Envelope& e) { return ack_frame({e}); }

  static wire::ClientFrame create_group_frame(const std::string& group_id) {
    wire::ClientFrame f;
    f.mutable_create_group()->set_group_id(group_id);
    return f;
  }

  // Adds `members` (with their access keys) to the group.
  static wire::ClientFrame add_members_frame(const std::string& group_id,
                                             const std::vector<const test_device*>& members,
                                             bool facilitator = false) {
    wire::ClientFrame f;
    auto* u = f.mutable_update_group();
    u->set_group_id(group_id);
    for (const auto* m : members) {
      auto* add = u->add_add();
      add->set_mailbox_id(m->mailbox);
      add->set_access_key(m->access_key);
      add->set_facilitator(facilitator);
    }
    return f;
  }

  static wire::ClientFrame remove_member_frame(const std::string& group_id,
                                               const test_device& member) {
    wire::ClientFrame f;
    f.mutable_update_group()->set_group_id(group_id);
    f.mutable_update_group()->add_remove(member.mailbox);
    return f;
  }

  static wire::ClientFrame group_send_frame(const std::string& group_id, const std::string& sealed,
                                            std::string envelope_id = random_string(16)) {
    wire::ClientFrame f;
    auto* s = f.mutable_group_send();
    s->set_envelope_id(std::move(envelope_id));
    s->set_group_id(group_id);
    s->set_sealed(sealed);
    return f;
  }

  static wire::ClientFrame ping_frame() {
    wire::ClientFrame f;
    f.mutable_ping();
    return f;
  }

  // Every envelope pushed on the logged-in `client` until the server says
  // the queue is drained, each acked as it comes (the replies are skipped).
  // Throws when the server goes quiet for `timeout` or pushes something else.
  static std::vector<wire::Envelope> take_queue(ws_client& client,
                                                std::chrono::milliseconds timeout = 10s) {
    std::vector<wire::Envelope> out;
    std::uint64_t ack_id = 1'000'000;
    for (;;) {
      auto f = client.next(timeout);
      if (!f)
        throw std::runtime_error("no queue_drained from the server after " +
                                 std::to_string(out.size()) + " envelopes (" +
                                 client.error.message() + ")");
      if (f->has_queue_drained()) return out;
      if (f->request_id() != 0) continue;  // an ack's reply
      if (!f->has_envelopes())
        throw std::runtime_error("unexpected push: " + f->ShortDebugString());
      auto& pushed = *f->mutable_envelopes()->mutable_envelopes(0);
      auto ack = ack_frame(pushed);
      ack.set_request_id(ack_id++);
      client.send(ack);
      out.push_back(std::move(pushed));
    }
  }
};

// Starts `havend` with an account for each device, each registered over
// its own connection from `source`.
inline void start_with_accounts(havend_process& havend, std::initializer_list<test_device*> devices,
                                const char* source = "127.0.0.1") {
  std::vector<std::string> invites;
  for (std::size_t i = 0; i < devices.size(); ++i) invites.push_back(havend.invite());
  havend.start();
  auto invite = invites.begin();
  for (auto* d : devices) {
    ws_client c(havend.port(), true, source);
    REQUIRE(d->register_on(c, *invite++).has_registered());
  }
}

}  // namespace haven::test
