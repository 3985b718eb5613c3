// havend's WebSocket frame reader (server/src/websocket_frame.hpp) on
// arbitrary bytes, fed in pieces as a socket delivers them.
//
// Input: one byte for the piece size (1 to 256 bytes), then the stream.
// Oracles: an event never takes more than the input holds and always takes
// something; a frame needing more bytes says how many; no message is over
// the cap and no ping payload over 125 bytes.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "websocket_frame.hpp"

namespace {

[[noreturn]] void bug(const char* what) {
  std::fprintf(stderr, "websocket frame fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace haven::server;
  if (size < 1) return 0;
  constexpr std::size_t max_message = 4096;
  const std::size_t piece = std::size_t{data[0]} + 1;
  std::size_t fed = 1;
  std::vector<std::uint8_t> in;
  ws::frame_reader reader;
  for (;;) {
    const auto event = reader.next(in, max_message);
    if (!event) return 0;  // a close to send: the connection ends here
    if (event->used > in.size()) bug("an event took more than the input");
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(event->used));
    if (event->kind == ws::event::need_more) {
      if (event->wanted == 0) bug("more bytes wanted, but none");
      if (fed == size) return 0;
      const auto take = std::min(piece, size - fed);
      in.insert(in.end(), data + fed, data + fed + take);
      fed += take;
      continue;
    }
    if (event->used == 0) bug("an event that took nothing");
    if (event->kind == ws::event::message && event->payload.size() > max_message)
      bug("a message over the cap");
    if (event->kind == ws::event::ping && event->payload.size() > 125)
      bug("a ping payload over 125 bytes");
  }
}
