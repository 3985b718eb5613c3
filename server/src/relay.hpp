#pragma once
// State shared by every connection of one havend.

#include <boost/asio/io_context.hpp>

#include <atomic>

#include "haven/server/config.hpp"
#include "haven/store/store.hpp"
#include "rate_limiter.hpp"
#include "registry.hpp"

namespace haven::server {

struct relay {
  relay(const config& c, store::store& s, boost::asio::io_context& io)
      : cfg(c),
        store(s),
        ioc(io),
        connections(c.connections_per_address),
        logins(c.logins_per_address),
        sends(c.sends_per_mailbox),
        prekey_fetches(c.prekey_fetches_per_mailbox) {}

  const config& cfg;
  store::store& store;
  boost::asio::io_context& ioc;
  session_registry registry;
  rate_limiter connections;     // per address: new TCP connections
  rate_limiter logins;          // per address: register and auth attempts
  rate_limiter sends;           // per sending mailbox
  rate_limiter prekey_fetches;  // per fetching mailbox
  std::atomic<bool> stopping{false};

  // Tells the sessions of the envelopes' devices, if connected, to push them.
  void deliver(const std::vector<store::stored_envelope>& stored);
  // A store `written` hook that delivers, so a push need not wait for the sync.
  store::written_hook deliver_when_written() {
    return [this](const std::vector<store::stored_envelope>& stored) { deliver(stored); };
  }
};

}  // namespace haven::server
