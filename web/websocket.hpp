// One WebSocket connection's protocol (RFC 6455) over Debian's libwslay, with
// no sockets: bytes from the peer in, whole messages out; messages to send in,
// bytes for the wire out. The server uses the server role; tests and fuzzers
// use a client-role session as the other end. Pings are answered and a close
// is echoed by wslay itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"

struct wslay_event_context;

namespace tsunagu::web {

// Sec-WebSocket-Accept for a handshake's Sec-WebSocket-Key: base64(SHA-1(key +
// the RFC's GUID)).
std::string websocket_accept_key(std::string_view client_key);

struct WebSocketLimits {
  size_t max_message_bytes = 64 * 1024;  // a bigger message closes with 1009
  size_t max_queued_output = 1 << 20;    // wire bytes not yet taken by take_output()
};

struct WebSocketMessage {
  bool text = true;  // false: a binary message
  std::string data;
};

enum class WebSocketErrc {
  protocol,        // the peer broke the protocol (wslay's verdict); the session is over
  closed,          // a close was sent or received: nothing more goes out
  output_full,     // the peer is not reading: more than max_queued_output waits
  too_large,       // a message to send is over max_message_bytes
};

struct WebSocketError {
  WebSocketErrc code = WebSocketErrc::protocol;
  std::string detail;
};

class WebSocketSession {
 public:
  enum class Role { server, client };
  explicit WebSocketSession(Role role = Role::server, WebSocketLimits limits = {});
  ~WebSocketSession();
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;

  // Feeds bytes from the peer; appends every message they complete to
  // `messages` (control frames are handled inside). An error means the
  // connection must end (take_output() may still hold a close frame).
  Expected<void, WebSocketError> receive(ByteView bytes, std::vector<WebSocketMessage>& messages);
  Expected<void, WebSocketError> send_text(std::string_view text);
  Expected<void, WebSocketError> send_binary(ByteView data);
  // Queues a close frame (code 1000 normal, 1001 going away, ...); the reason
  // is cut to the 123 bytes a close frame allows.
  void send_close(uint16_t code, std::string_view reason);

  Bytes take_output();
  bool has_output() const { return !output_.empty(); }

  bool close_received() const;
  bool close_sent() const;
  // The peer's close code: 1005 when its close had none, 1006 before any close.
  uint16_t peer_close_code() const;
  // Nothing more will be read or written: both closes went, or the protocol failed.
  bool finished() const;
  Role role() const { return role_; }

 private:
  struct Callbacks;
  Expected<void, WebSocketError> queue(uint8_t opcode, ByteView data);
  Expected<void, WebSocketError> pump_output();
  wslay_event_context* context_ = nullptr;
  Role role_;
  WebSocketLimits limits_;
  ByteView input_;
  std::vector<WebSocketMessage>* received_ = nullptr;
  Bytes output_;
  bool failed_ = false;
  bool closed_by_us_ = false;
};

}  // namespace tsunagu::web
