// The HTTPS/1.1 + WebSocket server of the node and the LAN agent: a libuv
// TCP listener, one TlsSession per connection (security/tls_session.hpp), the
// request parser (http_request_parser.hpp) and WebSocketSession
// (websocket.hpp). Handlers are plain functions of requests; the server owns
// the sockets, the timeouts and every limit.
//
// One request per connection is in flight at a time: the next pipelined
// request is parsed only after the previous one's response was written, so
// answers go out in order. A request the parser refuses gets a JSON body
// {"error":"bad_request"|...,"message":...} with the parser's status, and the
// connection closes; the server keeps serving. Every response gets
// X-Content-Type-Options, Referrer-Policy and Strict-Transport-Security unless
// the handler set them.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "base/expected.hpp"
#include "proto/socket_address.hpp"
#include "security/tls_session.hpp"
#include "web/http_message.hpp"
#include "web/http_request_parser.hpp"

namespace tsunagu::web {

struct HttpServerLimits {
  HttpParserLimits parser;
  size_t max_connections = 1000;
  uint32_t header_timeout_ms = 10000;  // a request's headers and body must arrive within this (slow clients cut)
  uint32_t idle_timeout_ms = 30000;    // keep-alive connection with no request
  uint32_t max_requests_per_connection = 10000;
  size_t max_queued_output = 4 << 20;  // per connection; a peer that stops reading is cut off
  size_t max_websocket_message = 64 * 1024;
  uint32_t websocket_idle_timeout_ms = 120000;  // no frame from the peer (pings count) for this long: closed
};

class HttpConnection;

// Answers one request. Call it exactly once (later calls do nothing); calling
// it after the connection has gone does nothing either, so a handler may
// answer later (from a storage callback, say). Move-only. A Responder
// destroyed without answering answers 500, so a connection never hangs.
class Responder {
 public:
  Responder() = default;
  Responder(std::weak_ptr<HttpConnection> connection, uint64_t request_number);
  Responder(Responder&& other) noexcept;
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void operator()(HttpResponse response);
  bool connection_open() const;

 private:
  std::weak_ptr<HttpConnection> connection_;
  uint64_t request_number_ = 0;
  bool answered_ = true;
};

// The server's half of an accepted WebSocket. Calls after the connection has
// gone do nothing. A text over the message limit, or a peer that does not
// read (output over max_queued_output), closes the connection.
class WebSocketChannel {
 public:
  virtual void send_text(std::string text) = 0;
  virtual void close(uint16_t code, std::string_view reason) = 0;
  virtual bool open() const = 0;
  virtual ~WebSocketChannel() = default;
};

struct WebSocketHandlers {
  std::function<void(std::string_view text)> on_message;
  std::function<void()> on_closed;  // once, when the connection ends (either side, or HttpServer::close())
};

struct HttpHandlers {
  std::function<void(HttpRequest request, Responder respond)> on_request;
  // For "Upgrade: websocket" requests (GET, Sec-WebSocket-Key, version 13;
  // others get 400 or 426 from the server): return the handlers to accept, or
  // an HttpResponse to refuse with. To get the channel, set `accepted` to a
  // function: the server calls it with the channel right after it wrote the
  // 101 answer, before any message arrives. Without on_websocket every
  // upgrade is answered 404.
  std::function<std::variant<WebSocketHandlers, HttpResponse>(
      const HttpRequest& request, std::function<void(std::shared_ptr<WebSocketChannel>)>& accepted)>
      on_websocket;
};

struct HttpServerCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused_full = 0;  // over max_connections: accepted and closed at once
  uint64_t tls_failures = 0;              // handshake or record errors
  uint64_t requests = 0;                  // complete requests given to handlers (upgrades included)
  uint64_t bad_requests = 0;              // refused by the parser (4xx/5xx answered by the server)
  uint64_t timeouts = 0;                  // header, idle and WebSocket idle timeouts
  uint64_t output_overflows = 0;          // connections cut for not reading
  uint64_t websocket_sessions = 0;        // upgrades accepted
  uint64_t websocket_messages = 0;        // messages received
};

class HttpServer {
 public:
  // Binds and listens; port 0 picks a free port (see address()). The error is
  // for people ("bind 0.0.0.0:8443: address already in use").
  static Expected<std::unique_ptr<HttpServer>, std::string> listen(uv_loop_t* loop, const proto::SocketAddress& address,
                                                                   std::shared_ptr<security::TlsContext> tls,
                                                                   HttpServerLimits limits, HttpHandlers handlers);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // Closes (as close()). The loop must run afterwards so libuv can finish the
  // handles' closes; nothing of the server is touched then.
  ~HttpServer();

  proto::SocketAddress address() const { return address_; }
  // Stops listening and closes every connection (WebSocket handlers get
  // on_closed). No handler runs after this returns; Responders become no-ops.
  void close();
  const HttpServerCounters& counters() const;
  size_t connection_count() const;
  // A new certificate (a reload): connections accepted from now on use it;
  // open ones keep the one they shook hands with.
  void replace_tls(std::shared_ptr<security::TlsContext> tls);

 private:
  friend class HttpConnection;
  struct Impl;
  HttpServer() = default;
  std::shared_ptr<Impl> impl_;
  proto::SocketAddress address_;
};

}  // namespace tsunagu::web
