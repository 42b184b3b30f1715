#include "web/websocket.hpp"

#include <wslay/wslay.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "security/digest.hpp"
#include "security/encoding.hpp"
#include "security/random.hpp"

namespace tsunagu::web {

std::string websocket_accept_key(std::string_view client_key) {
  std::string joined(client_key);
  joined += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  return security::base64_encode(security::sha1(as_bytes(joined)));
}

struct WebSocketSession::Callbacks {
  static WebSocketSession& of(void* user_data) { return *static_cast<WebSocketSession*>(user_data); }

  static ssize_t recv(wslay_event_context_ptr context, uint8_t* buf, size_t len, int, void* user_data) {
    WebSocketSession& session = of(user_data);
    if (session.input_.empty()) {
      wslay_event_set_error(context, WSLAY_ERR_WOULDBLOCK);
      return -1;
    }
    size_t n = std::min(len, session.input_.size());
    std::memcpy(buf, session.input_.data(), n);
    session.input_ = session.input_.subspan(n);
    return static_cast<ssize_t>(n);
  }

  static ssize_t send(wslay_event_context_ptr, const uint8_t* data, size_t len, int, void* user_data) {
    WebSocketSession& session = of(user_data);
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    session.output_.insert(session.output_.end(), bytes, bytes + len);
    return static_cast<ssize_t>(len);
  }

  static int genmask(wslay_event_context_ptr, uint8_t* buf, size_t len, void*) {
    security::random_bytes(std::span<std::byte>(reinterpret_cast<std::byte*>(buf), len));
    return 0;
  }

  static void on_message(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user_data) {
    WebSocketSession& session = of(user_data);
    if (session.received_ == nullptr) return;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME) return;
    WebSocketMessage message;
    message.text = arg->opcode == WSLAY_TEXT_FRAME;
    message.data.assign(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
    session.received_->push_back(std::move(message));
  }
};

WebSocketSession::WebSocketSession(Role role, WebSocketLimits limits) : role_(role), limits_(limits) {
  wslay_event_callbacks callbacks{};
  callbacks.recv_callback = Callbacks::recv;
  callbacks.send_callback = Callbacks::send;
  callbacks.genmask_callback = Callbacks::genmask;
  callbacks.on_msg_recv_callback = Callbacks::on_message;
  int rc = role == Role::server ? wslay_event_context_server_init(&context_, &callbacks, this)
                                : wslay_event_context_client_init(&context_, &callbacks, this);
  if (rc != 0) std::abort();  // only WSLAY_ERR_NOMEM
  wslay_event_config_set_max_recv_msg_length(context_, limits_.max_message_bytes);
}

WebSocketSession::~WebSocketSession() { wslay_event_context_free(context_); }

Expected<void, WebSocketError> WebSocketSession::pump_output() {
  if (wslay_event_send(context_) != 0) {
    failed_ = true;
    return Unexpected(WebSocketError{WebSocketErrc::protocol, "websocket: send failed"});
  }
  if (output_.size() > limits_.max_queued_output)
    return Unexpected(WebSocketError{WebSocketErrc::output_full, "websocket: peer is not reading"});
  return {};
}

Expected<void, WebSocketError> WebSocketSession::receive(ByteView bytes, std::vector<WebSocketMessage>& messages) {
  if (failed_) return Unexpected(WebSocketError{WebSocketErrc::protocol, "websocket: session failed"});
  input_ = bytes;
  received_ = &messages;
  int rc = wslay_event_recv(context_);
  received_ = nullptr;
  input_ = {};
  if (rc != 0) {
    failed_ = true;
    return Unexpected(WebSocketError{WebSocketErrc::protocol, "websocket: receive failed"});
  }
  // Answers to pings and the echo of a close.
  if (auto pumped = pump_output(); !pumped) return pumped;
  if (close_sent() && !closed_by_us_ && !close_received()) {
    // wslay failed the connection itself (1002 protocol, 1007 bad UTF-8,
    // 1009 too big) and has queued its close.
    failed_ = true;
    return Unexpected(WebSocketError{WebSocketErrc::protocol,
                                     "websocket: peer broke the protocol (close " +
                                         std::to_string(wslay_event_get_status_code_sent(context_)) + ")"});
  }
  return {};
}

Expected<void, WebSocketError> WebSocketSession::queue(uint8_t opcode, ByteView data) {
  if (failed_) return Unexpected(WebSocketError{WebSocketErrc::protocol, "websocket: session failed"});
  if (data.size() > limits_.max_message_bytes)
    return Unexpected(WebSocketError{WebSocketErrc::too_large, "websocket: message over the size limit"});
  if (output_.size() + data.size() > limits_.max_queued_output)
    return Unexpected(WebSocketError{WebSocketErrc::output_full, "websocket: peer is not reading"});
  wslay_event_msg message{opcode, reinterpret_cast<const uint8_t*>(data.data()), data.size()};
  if (wslay_event_queue_msg(context_, &message) != 0)
    return Unexpected(WebSocketError{WebSocketErrc::closed, "websocket: closing, nothing more is sent"});
  return pump_output();
}

Expected<void, WebSocketError> WebSocketSession::send_text(std::string_view text) {
  return queue(WSLAY_TEXT_FRAME, as_bytes(text));
}

Expected<void, WebSocketError> WebSocketSession::send_binary(ByteView data) { return queue(WSLAY_BINARY_FRAME, data); }

void WebSocketSession::send_close(uint16_t code, std::string_view reason) {
  if (failed_ || close_sent()) return;
  closed_by_us_ = true;
  reason = reason.substr(0, 123);
  if (wslay_event_queue_close(context_, code, reinterpret_cast<const uint8_t*>(reason.data()), reason.size()) != 0)
    return;
  (void)pump_output();
}

Bytes WebSocketSession::take_output() { return std::exchange(output_, {}); }

bool WebSocketSession::close_received() const { return wslay_event_get_close_received(context_) != 0; }
bool WebSocketSession::close_sent() const { return wslay_event_get_close_sent(context_) != 0; }
uint16_t WebSocketSession::peer_close_code() const { return wslay_event_get_status_code_received(context_); }

bool WebSocketSession::finished() const {
  return failed_ || (close_sent() && close_received()) ||
         (!wslay_event_get_read_enabled(context_) && !wslay_event_get_write_enabled(context_));
}

}  // namespace tsunagu::web
