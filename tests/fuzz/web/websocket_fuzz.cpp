// Fuzz target: a WebSocket session fed a peer's bytes in pieces. Input layout:
//   byte 0      bit 0: the session is a client (else a server); bits 1-7:
//               message limit 64 * (value + 1) bytes
//   byte 1      chunk size (0 means 1)
//   the rest    the bytes from the peer
// No message may exceed the limit; once the session fails it stays failed;
// answering with a send never crashes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "web/websocket.hpp"

using namespace tsunagu;
using namespace tsunagu::web;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  WebSocketLimits limits;
  limits.max_message_bytes = 64u * ((data[0] >> 1) + 1u);
  limits.max_queued_output = 1 << 16;
  auto role = (data[0] & 1) ? WebSocketSession::Role::client : WebSocketSession::Role::server;
  const size_t chunk = data[1] == 0 ? 1 : data[1];
  ByteView stream(reinterpret_cast<const std::byte*>(data + 2), size - 2);

  WebSocketSession session(role, limits);
  bool failed = false;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    std::vector<WebSocketMessage> messages;
    auto received = session.receive(stream.subspan(at, std::min(chunk, stream.size() - at)), messages);
    for (const auto& message : messages) {
      require(message.data.size() <= limits.max_message_bytes);
      (void)session.send_text(message.text ? message.data : std::string("binary"));
    }
    if (!received) {
      failed = true;
      break;
    }
    require(session.take_output().size() <= limits.max_queued_output + limits.max_message_bytes + 16);
  }
  if (failed) {
    std::vector<WebSocketMessage> messages;
    require(!session.receive(stream, messages).has_value());
    require(messages.empty());
  }
  session.send_close(1000, "end");
  (void)session.take_output();
  return 0;
}
