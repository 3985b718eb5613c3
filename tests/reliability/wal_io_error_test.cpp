// An I/O error in RocksDB's write-ahead log, as a failing disk gives: RocksDB
// writes nothing more until reopened, so havend stops by itself with exit
// status 1 for its supervisor to restart it, and the restart loses nothing
// that was acknowledged. The error comes from a preloaded library
// (eio_shim/) that fails writes to the WAL files once a trigger file exists.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "havend_process.hpp"
#include "temp_dir.hpp"
#include "test_device.hpp"
#include "ws_client.hpp"

using namespace haven;
using namespace haven::test;

TEST_CASE("an I/O error in the write-ahead log stops havend with status 1, and a restart "
          "loses nothing acknowledged",
          "[disk]") {
  temp_dir dir("haven-wal-eio");
  const auto trigger = dir.path() / "fail-now";
  std::ofstream(dir.path() / "c.toml")
      << "[limits]\n"
         "sends_per_mailbox = { per_second = 100000, burst = 100000 }\n";
  havend_process havend(dir.path() / "data", {"--config", (dir.path() / "c.toml").string()});
  const auto recipient_invite = havend.invite();
  const auto sender_invite = havend.invite();
  std::vector<std::string> env{std::string("LD_PRELOAD=") + HAVEN_EIO_SHIM_PATH,
                               "HAVEN_EIO_TRIGGER=" + trigger.string()};
#if defined(__SANITIZE_ADDRESS__)
  // ASan wants its runtime first among the libraries; the shim comes first.
  const char* asan = std::getenv("ASAN_OPTIONS");
  env.push_back(std::string("ASAN_OPTIONS=") + (asan != nullptr ? asan : "") +
                ":verify_asan_link_order=0");
#endif
  havend.start(env);

  test_device recipient, sender;
  {
    ws_client c(havend.port());
    REQUIRE(recipient.register_on(c, recipient_invite).has_registered());
  }
  std::map<std::string, std::string> acked;  // envelope id -> payload
  std::set<std::string> refused;
  {
    ws_client c(havend.port());
    REQUIRE(sender.register_on(c, sender_invite).has_registered());
    for (int i = 0; i < 20; ++i) {
      const auto id = random_string(16);
      const auto payload = "before " + std::to_string(i);
      REQUIRE(c.request(test_device::send_frame(recipient, payload, id)).has_sent());
      acked.emplace(id, payload);
    }

    std::ofstream(trigger) << "now\n";
    // The failed write is answered as unavailable; havend may close the
    // connection before answering the ones after it.
    const auto id = random_string(16);
    refused.insert(id);
    auto frame = test_device::send_frame(recipient, "during", id);
    frame.set_request_id(1'000);
    c.send(frame);
    auto reply = c.next(10s);
    while (reply && reply->request_id() == 0) reply = c.next(10s);  // QueueDrained
    if (reply) {
      INFO(reply->ShortDebugString());
      REQUIRE(reply->has_error());
      CHECK(reply->error().code() == wire::ERROR_UNAVAILABLE);
    }
  }
  const auto status = havend.wait_exit(20s);
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  CHECK(havend.log().find("storage failed") != std::string::npos);

  // Restarted (as the supervisor would) on a disk that works again.
  std::filesystem::remove(trigger);
  havend.start();
  {
    ws_client c(havend.port());
    REQUIRE(sender.login_on(c).has_authenticated());
    REQUIRE(c.request(test_device::send_frame(recipient, "after", random_string(16))).has_sent());
  }
  ws_client c(havend.port());
  REQUIRE(recipient.login_on(c).has_authenticated());
  const auto got = test_device::take_queue(c);
  std::map<std::string, std::string> found;
  for (const auto& e : got) {
    INFO("envelope " << e.seq());
    REQUIRE(found.emplace(e.envelope_id(), e.sealed()).second);  // once each
  }
  // Every acknowledged one, and the one after the restart; the refused one
  // may be there too (a redelivery clients drop by id), nothing else.
  for (const auto& [id, payload] : acked) {
    INFO("acknowledged " << payload);
    REQUIRE(found.contains(id));
    CHECK(found.at(id) == payload);
    found.erase(id);
  }
  int after = 0;
  for (const auto& [id, payload] : found) {
    if (payload == "after") ++after;
    else CHECK(refused.contains(id));
  }
  CHECK(after == 1);
}
