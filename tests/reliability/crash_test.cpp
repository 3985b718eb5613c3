// Crash safety: havend is killed with SIGKILL again and again while clients
// send; every envelope whose send was acknowledged must still be delivered.

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

TEST_CASE("SIGKILL while clients send loses no acknowledged envelope", "[crash]") {
  temp_dir dir("haven-crash");
  std::ofstream(dir.path() / "limits.toml")
      << "[limits]\n"
         "connections_per_address = { per_second = 10000, burst = 10000 }\n"
         "logins_per_address = { per_second = 10000, burst = 10000 }\n"
         "sends_per_mailbox = { per_second = 100000, burst = 100000 }\n"
         "[store]\nmax_queue_per_device = 1000000\n";
  havend_process havend(dir.path() / "data", {"--config", (dir.path() / "limits.toml").string()});
  constexpr int k_senders = 4;
  constexpr int k_rounds = 12;
  std::vector<std::string> invites;
  for (int i = 0; i <= k_senders; ++i) invites.push_back(havend.invite());
  havend.start();

  test_device recipient;
  {
    ws_client c(havend.port());
    REQUIRE(recipient.register_on(c, invites[0]).has_registered());
  }
  std::vector<test_device> senders(k_senders);
  for (int i = 0; i < k_senders; ++i) {
    ws_client c(havend.port());
    REQUIRE(senders[static_cast<std::size_t>(i)].register_on(c, invites[static_cast<std::size_t>(i + 1)]).has_registered());
  }

  std::atomic<unsigned short> port{havend.port()};
  std::mutex mutex;
  std::set<std::string> acked;
  std::atomic<int> attempts{0}, failures{0};
  // jthreads stop and join on any exit, so a restart that throws reports its
  // error instead of ending in std::terminate.
  std::vector<std::jthread> threads;
  for (auto& sender : senders)
    threads.emplace_back([&](std::stop_token stop) {
      while (!stop.stop_requested()) {
        try {
          ws_client c(port, true);
          if (!sender.login_on(c).has_authenticated()) continue;
          while (!stop.stop_requested()) {
            const auto id = random_string(16);
            ++attempts;
            auto reply = c.request(test_device::send_frame(recipient, "payload " + id, id), 3s);
            if (!reply.has_sent()) break;
            std::lock_guard lock(mutex);
            acked.insert(id);
          }
        } catch (const std::exception&) {
          ++failures;  // the server died under us: reconnect
          std::this_thread::sleep_for(10ms);
        }
      }
    });

  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < k_rounds; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 250));
    havend.kill_now();
    havend.start();  // same port
  }
  for (auto& t : threads) t.request_stop();
  threads.clear();  // joins the senders

  // Collect everything now queued for the recipient.
  ws_client c(havend.port());
  REQUIRE(recipient.login_on(c).has_authenticated());
  const auto queued = test_device::take_queue(c);
  std::set<std::string> received;
  for (const auto& e : queued) {
    received.insert(e.envelope_id());
    CHECK(e.sealed() == "payload " + e.envelope_id());
  }
  const auto deliveries = queued.size();
  std::size_t lost = 0;
  for (const auto& id : acked) lost += received.count(id) == 0 ? 1 : 0;
  WARN("crash rounds: " << k_rounds << ", sends tried: " << attempts << ", acknowledged: "
                        << acked.size() << ", delivered (distinct): " << received.size()
                        << ", deliveries: " << deliveries << ", reconnects: " << failures);
  CHECK(acked.size() > 100);  // the test really exercised sends between kills
  CHECK(lost == 0);
  // Each envelope is stored once: the same id never shows up twice.
  CHECK(deliveries == received.size());
}
