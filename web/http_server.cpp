#include "web/http_server.hpp"

#include <algorithm>
#include <list>
#include <utility>
#include <vector>

#include "security/encoding.hpp"
#include "transport/owned_handle.hpp"
#include "transport/tls_link.hpp"
#include "web/websocket.hpp"

namespace tsunagu::web {
namespace {

// One read buffer per thread: reads are handled to completion inside read_cb.
thread_local std::byte read_buffer[64 * 1024];

// After a response that ends the connection, how long a peer may keep sending
// (bytes we discard) before the socket is closed; closing at once with unread
// bytes would reset the connection and could destroy the response in flight.
constexpr uint32_t linger_ms = 2000;

std::string json_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char hex[] = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xf];
          out += hex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string_view error_code_for(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 417: return "expectation_failed";
    case 426: return "upgrade_required";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 505: return "http_version_not_supported";
    default: return status >= 500 ? "internal" : "bad_request";
  }
}

HttpResponse json_error(int status, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.headers.add("content-type", "application/json");
  response.body = "{\"error\":\"" + std::string(error_code_for(status)) + "\",\"message\":\"" + json_escape(message) + "\"}";
  return response;
}

bool contains_token(std::string_view list, std::string_view token) {
  // Comma-separated header list, compared case-insensitively.
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    size_t begin = item.find_first_not_of(" \t");
    size_t end = item.find_last_not_of(" \t");
    if (begin == std::string_view::npos) continue;
    item = item.substr(begin, end - begin + 1);
    if (item.size() != token.size()) continue;
    bool same = true;
    for (size_t i = 0; i < item.size() && same; ++i) {
      char a = item[i];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      same = a == token[i];
    }
    if (same) return true;
  }
  return false;
}

void add_security_headers(HttpResponse& response) {
  if (!response.headers.contains("x-content-type-options")) response.headers.add("x-content-type-options", "nosniff");
  if (!response.headers.contains("referrer-policy")) response.headers.add("referrer-policy", "no-referrer");
  if (!response.headers.contains("strict-transport-security"))
    response.headers.add("strict-transport-security", "max-age=31536000");
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  uv_loop_t* loop = nullptr;
  transport::OwnedHandle<uv_tcp_t> listener;
  std::shared_ptr<security::TlsContext> tls;
  HttpServerLimits limits;
  HttpHandlers handlers;
  HttpServerCounters counters;
  std::list<std::shared_ptr<HttpConnection>> connections;
  bool closed = false;

  static void on_connection(uv_stream_t* listening, int status);
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  explicit HttpConnection(std::shared_ptr<HttpServer::Impl> server)
      : server_(std::move(server)),
        tls_(security::TlsSession::create(server_->tls, security::TlsSession::Role::server)),
        parser_(server_->limits.parser) {}

  // Accepts the pending connection; false when libuv refused it.
  bool start(uv_stream_t* listening, std::list<std::shared_ptr<HttpConnection>>::iterator position);
  void respond(uint64_t number, HttpResponse response);
  bool open() const { return !closing_ && !server_->closed; }
  void websocket_send(std::string text);
  void websocket_close(uint16_t code, std::string_view reason);
  bool websocket_open() const { return open() && websocket_ && phase_ == Phase::websocket; }
  // Closes at once: no more callbacks into handlers except a WebSocket's on_closed.
  void finish();

 private:
  enum class Phase { waiting_request, receiving_request, handling, websocket, closing };

  void on_read(ssize_t nread, const uv_buf_t* buf);
  void process();
  void dispatch(HttpRequest request);
  void upgrade(HttpRequest request);
  void refuse(int status, std::string_view message);
  void send_response(HttpResponse response, bool keep_alive, bool head_only);
  void feed_websocket(ByteView bytes);
  void flush_websocket();
  void send_plaintext(std::string_view bytes);
  void flush_tls();
  void write_raw(Bytes bytes);
  void refuse_plain_http();
  void close_after_flush();
  void report_websocket_closed();
  void shut_down_sending();
  void arm(uint32_t ms);
  void on_timeout();
  void set_reading(bool on);

  static void alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
    buf->base = reinterpret_cast<char*>(read_buffer);
    buf->len = sizeof read_buffer;
  }
  static void close_cb(uv_handle_t* handle);

  struct WriteRequest {
    uv_write_t request{};
    Bytes bytes;
    HttpConnection* connection = nullptr;
  };

  std::shared_ptr<HttpServer::Impl> server_;
  std::list<std::shared_ptr<HttpConnection>>::iterator position_;
  std::shared_ptr<HttpConnection> self_;  // kept until libuv has closed both handles
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_request_{};
  int open_handles_ = 0;
  std::unique_ptr<security::TlsSession> tls_;
  HttpRequestParser parser_;
  Phase phase_ = Phase::waiting_request;
  std::string client_address_;
  uint64_t request_number_ = 0;
  bool in_flight_ = false;
  bool in_flight_head_ = false;
  bool in_flight_keep_alive_ = false;
  uint32_t requests_seen_ = 0;
  size_t queued_output_ = 0;
  bool closing_ = false;      // handles are closing
  bool flushing_to_close_ = false;
  bool first_bytes_seen_ = false;
  bool plain_http_refused_ = false;
  bool shut_down_ = false;
  bool reading_ = false;
  bool processing_ = false;
  std::unique_ptr<WebSocketSession> websocket_;
  WebSocketHandlers websocket_handlers_;
  bool websocket_closed_reported_ = false;
};

namespace {

class ServerWebSocketChannel : public WebSocketChannel {
 public:
  explicit ServerWebSocketChannel(std::weak_ptr<HttpConnection> connection) : connection_(std::move(connection)) {}
  void send_text(std::string text) override {
    if (auto c = connection_.lock()) c->websocket_send(std::move(text));
  }
  void close(uint16_t code, std::string_view reason) override {
    if (auto c = connection_.lock()) c->websocket_close(code, reason);
  }
  bool open() const override {
    auto c = connection_.lock();
    return c && c->websocket_open();
  }

 private:
  std::weak_ptr<HttpConnection> connection_;
};

}  // namespace

bool HttpConnection::start(uv_stream_t* listening, std::list<std::shared_ptr<HttpConnection>>::iterator position) {
  position_ = position;
  self_ = shared_from_this();
  uv_tcp_init(listening->loop, &tcp_);
  tcp_.data = this;
  uv_timer_init(listening->loop, &timer_);
  timer_.data = this;
  open_handles_ = 2;
  if (tls_ == nullptr || uv_accept(listening, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    finish();
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage address{};
  int length = sizeof address;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    client_address_ = transport::from_sockaddr(reinterpret_cast<sockaddr*>(&address)).to_string();
  // The TLS handshake and the first request share the header timeout.
  arm(server_->limits.header_timeout_ms);
  set_reading(true);
  return !closing_;
}

void HttpConnection::set_reading(bool on) {
  if (closing_ || on == reading_) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (on) {
    int rc = uv_read_start(stream, alloc_cb, [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
      static_cast<HttpConnection*>(s->data)->on_read(nread, buf);
    });
    if (rc != 0) {
      finish();
      return;
    }
  } else {
    uv_read_stop(stream);
  }
  reading_ = on;
}

void HttpConnection::arm(uint32_t ms) {
  if (closing_) return;
  uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<HttpConnection*>(t->data)->on_timeout(); }, ms, 0);
}

void HttpConnection::on_timeout() {
  if (closing_) return;
  switch (phase_) {
    case Phase::closing:
      finish();
      return;
    case Phase::handling:
      return;  // not armed while a handler works
    case Phase::waiting_request:
      ++server_->counters.timeouts;
      if (!tls_->handshake_complete()) finish();
      else close_after_flush();
      return;
    case Phase::receiving_request:
      ++server_->counters.timeouts;
      if (!tls_->handshake_complete()) {
        finish();
        return;
      }
      send_response(json_error(408, "the request did not arrive in time"), false, false);
      return;
    case Phase::websocket:
      ++server_->counters.timeouts;
      websocket_->send_close(1001, "idle");
      flush_websocket();
      close_after_flush();
      return;
  }
}

void HttpConnection::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (closing_ || nread == 0) return;
  if (nread < 0) {
    finish();
    return;
  }
  if (plain_http_refused_) return;  // lingering until the 400 is out; the rest is dropped
  if (!first_bytes_seen_) {
    first_bytes_seen_ = true;
    // A TLS connection starts with a handshake record (0x16); an upper-case
    // letter is a request method: someone typed http:// for this https port.
    if (buf->base[0] >= 'A' && buf->base[0] <= 'Z') {
      refuse_plain_http();
      return;
    }
  }
  thread_local Bytes plaintext;
  plaintext.clear();
  auto received = tls_->receive(ByteView(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(nread)), plaintext);
  flush_tls();
  if (closing_) return;
  if (!received) {
    ++server_->counters.tls_failures;
    finish();
    return;
  }
  if (phase_ == Phase::closing) {
    if (tls_->peer_closed()) finish();
    return;  // lingering: what the peer still sends is dropped
  }
  if (!plaintext.empty()) {
    if (websocket_) {
      feed_websocket(plaintext);
    } else {
      parser_.append(as_chars(plaintext));
      process();
    }
  }
  if (!closing_ && tls_->peer_closed() && phase_ != Phase::handling) finish();
}

void HttpConnection::process() {
  if (processing_) return;  // a handler answered inside dispatch(): the loop below continues
  processing_ = true;
  while (!closing_ && !in_flight_ && !websocket_ && phase_ != Phase::closing) {
    auto next = parser_.next();
    if (!next) {
      ++server_->counters.bad_requests;
      refuse(next.error().status, next.error().detail);
      break;
    }
    if (!next->has_value()) {
      if (parser_.take_expect_continue()) send_plaintext("HTTP/1.1 100 Continue\r\n\r\n");
      if ((parser_.in_request() || parser_.buffered() > 0) && phase_ == Phase::waiting_request) {
        phase_ = Phase::receiving_request;
        arm(server_->limits.header_timeout_ms);
      }
      break;
    }
    uv_timer_stop(&timer_);
    phase_ = Phase::handling;
    dispatch(std::move(**next));
  }
  // While a handler works, pipelined bytes wait in the parser; past a bound
  // the socket is not read until the answer is out.
  if (!closing_ && in_flight_ && parser_.buffered() > server_->limits.parser.max_header_bytes) set_reading(false);
  processing_ = false;
}

void HttpConnection::dispatch(HttpRequest request) {
  ++server_->counters.requests;
  ++requests_seen_;
  request.client_address = client_address_;
  const std::string* upgrade_header = request.headers.find("upgrade");
  if (request.upgrade && upgrade_header != nullptr && contains_token(*upgrade_header, "websocket")) {
    upgrade(std::move(request));
    return;
  }
  in_flight_ = true;
  in_flight_head_ = request.method == "HEAD";
  // After an upgrade the parser has stopped: whatever was refused, the
  // connection ends after this answer.
  in_flight_keep_alive_ = request.keep_alive && !request.upgrade;
  uint64_t number = ++request_number_;
  if (server_->closed || !server_->handlers.on_request) {
    respond(number, json_error(404, "no such resource"));
    return;
  }
  auto handlers_owner = server_;  // the handler may close the server and free this connection's last reference
  handlers_owner->handlers.on_request(std::move(request), Responder(weak_from_this(), number));
}

void HttpConnection::respond(uint64_t number, HttpResponse response) {
  if (closing_ || !in_flight_ || number != request_number_ || phase_ != Phase::handling) return;
  in_flight_ = false;
  bool keep_alive = in_flight_keep_alive_ && requests_seen_ < server_->limits.max_requests_per_connection &&
                    !server_->closed;
  if (const std::string* connection = response.headers.find("connection"); connection && contains_token(*connection, "close"))
    keep_alive = false;
  send_response(std::move(response), keep_alive, in_flight_head_);
  if (closing_ || !keep_alive) return;
  phase_ = Phase::waiting_request;
  arm(server_->limits.idle_timeout_ms);
  set_reading(true);
  process();
}

void HttpConnection::send_response(HttpResponse response, bool keep_alive, bool head_only) {
  add_security_headers(response);
  send_plaintext(serialize_response(response, keep_alive, head_only));
  if (!keep_alive) close_after_flush();
}

void HttpConnection::refuse(int status, std::string_view message) {
  send_response(json_error(status, message), false, false);
}

void HttpConnection::upgrade(HttpRequest request) {
  const std::string* key = request.headers.find("sec-websocket-key");
  const std::string* version = request.headers.find("sec-websocket-version");
  auto decoded_key = key ? security::base64_decode(*key) : std::nullopt;
  if (request.method != "GET" || !decoded_key || decoded_key->size() != 16) {
    refuse(400, "not a valid WebSocket handshake");
    return;
  }
  if (version == nullptr || *version != "13") {
    HttpResponse response = json_error(426, "WebSocket version 13 only");
    response.headers.add("sec-websocket-version", "13");
    send_response(std::move(response), false, false);
    return;
  }
  if (server_->closed || !server_->handlers.on_websocket) {
    refuse(404, "no WebSocket here");
    return;
  }
  std::function<void(std::shared_ptr<WebSocketChannel>)> accepted;
  auto handlers_owner = server_;
  auto answer = handlers_owner->handlers.on_websocket(request, accepted);
  if (closing_) return;
  if (auto* refusal = std::get_if<HttpResponse>(&answer)) {
    send_response(std::move(*refusal), false, request.method == "HEAD");
    return;
  }
  websocket_handlers_ = std::move(std::get<WebSocketHandlers>(answer));
  HttpResponse switching;
  switching.status = 101;
  switching.headers.add("upgrade", "websocket");
  switching.headers.add("connection", "Upgrade");
  switching.headers.add("sec-websocket-accept", websocket_accept_key(*key));
  send_plaintext(serialize_response(switching, true));
  if (closing_) return;
  WebSocketLimits limits;
  limits.max_message_bytes = server_->limits.max_websocket_message;
  limits.max_queued_output = server_->limits.max_queued_output;
  websocket_ = std::make_unique<WebSocketSession>(WebSocketSession::Role::server, limits);
  phase_ = Phase::websocket;
  ++server_->counters.websocket_sessions;
  arm(server_->limits.websocket_idle_timeout_ms);
  if (accepted) accepted(std::make_shared<ServerWebSocketChannel>(weak_from_this()));
  if (closing_ || phase_ != Phase::websocket) return;
  std::string early = parser_.take_buffered();
  if (!early.empty()) feed_websocket(as_bytes(early));
}

void HttpConnection::feed_websocket(ByteView bytes) {
  if (phase_ != Phase::websocket) return;
  arm(server_->limits.websocket_idle_timeout_ms);
  std::vector<WebSocketMessage> messages;
  auto received = websocket_->receive(bytes, messages);
  flush_websocket();
  auto self = shared_from_this();  // a handler may close the server
  for (auto& message : messages) {
    if (closing_ || phase_ != Phase::websocket) return;
    ++server_->counters.websocket_messages;
    if (message.text && websocket_handlers_.on_message) websocket_handlers_.on_message(message.data);
  }
  if (closing_ || phase_ != Phase::websocket) return;
  if (!received || websocket_->close_received() || websocket_->finished()) close_after_flush();
}

void HttpConnection::flush_websocket() {
  if (!websocket_ || !websocket_->has_output()) return;
  Bytes wire = websocket_->take_output();
  send_plaintext(as_chars(wire));
}

void HttpConnection::websocket_send(std::string text) {
  if (!websocket_open()) return;
  auto sent = websocket_->send_text(text);
  flush_websocket();
  if (!sent) {
    if (sent.error().code == WebSocketErrc::output_full) ++server_->counters.output_overflows;
    if (sent.error().code == WebSocketErrc::too_large) websocket_->send_close(1009, "message too big");
    flush_websocket();
    close_after_flush();
  }
}

void HttpConnection::websocket_close(uint16_t code, std::string_view reason) {
  if (!websocket_open()) return;
  websocket_->send_close(code, reason);
  flush_websocket();
  // TLS close_notify and FIN follow the close frame; the peer's answer is
  // not awaited beyond the linger time.
  close_after_flush();
}

void HttpConnection::send_plaintext(std::string_view bytes) {
  if (closing_) return;
  if (auto sent = tls_->send(as_bytes(bytes)); !sent) {
    ++server_->counters.tls_failures;
    finish();
    return;
  }
  flush_tls();
}

void HttpConnection::flush_tls() {
  if (closing_ || !tls_->has_output()) return;
  write_raw(tls_->take_output());
}

void HttpConnection::write_raw(Bytes bytes) {
  if (closing_ || shut_down_) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  if (queued_output_ == 0) {
    int written = uv_try_write(stream, &buf, 1);
    if (written == static_cast<int>(bytes.size())) return;
    if (written > 0) {
      bytes.erase(bytes.begin(), bytes.begin() + written);
    } else if (written != UV_EAGAIN) {
      finish();
      return;
    }
  }
  if (queued_output_ + bytes.size() > server_->limits.max_queued_output) {
    ++server_->counters.output_overflows;
    finish();
    return;
  }
  auto* request = new WriteRequest;
  request->bytes = std::move(bytes);
  request->connection = this;
  request->request.data = request;
  queued_output_ += request->bytes.size();
  buf = uv_buf_init(reinterpret_cast<char*>(request->bytes.data()), static_cast<unsigned>(request->bytes.size()));
  int rc = uv_write(&request->request, stream, &buf, 1, [](uv_write_t* r, int status) {
    auto* write = static_cast<WriteRequest*>(r->data);
    HttpConnection* connection = write->connection;
    connection->queued_output_ -= write->bytes.size();
    delete write;
    if (connection->closing_) return;
    if (status != 0) {
      connection->finish();
      return;
    }
    if (connection->flushing_to_close_ && connection->queued_output_ == 0) connection->shut_down_sending();
  });
  if (rc != 0) {
    queued_output_ -= request->bytes.size();
    delete request;
    finish();
  }
}

// nginx's courtesy: a readable answer instead of a TLS alert, which a browser
// shows as a download of garbage or an empty page.
void HttpConnection::refuse_plain_http() {
  ++server_->counters.bad_requests;
  plain_http_refused_ = true;
  static constexpr std::string_view body = "This port speaks HTTPS: use https:// in the address.\n";
  std::string answer = "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: " +
                       std::to_string(body.size()) + "\r\nconnection: close\r\n\r\n" + std::string(body);
  write_raw(Bytes(reinterpret_cast<const std::byte*>(answer.data()),
                  reinterpret_cast<const std::byte*>(answer.data()) + answer.size()));
  if (closing_) return;
  flushing_to_close_ = true;
  phase_ = Phase::closing;
  arm(linger_ms);
  if (queued_output_ == 0) shut_down_sending();
}

void HttpConnection::close_after_flush() {
  if (closing_ || flushing_to_close_) return;
  flushing_to_close_ = true;
  phase_ = Phase::closing;
  // For a WebSocket, the end is now: nothing more is read or sent.
  report_websocket_closed();
  if (closing_) return;
  tls_->close();
  flush_tls();
  if (closing_) return;
  arm(linger_ms);
  set_reading(true);  // to see the peer's end of the connection while lingering
  if (queued_output_ == 0) shut_down_sending();
}

void HttpConnection::shut_down_sending() {
  if (closing_ || shut_down_) return;
  shut_down_ = true;
  shutdown_request_.data = this;
  int rc = uv_shutdown(&shutdown_request_, reinterpret_cast<uv_stream_t*>(&tcp_), [](uv_shutdown_t* request, int status) {
    auto* connection = static_cast<HttpConnection*>(request->data);
    if (connection->closing_) return;
    if (status != 0) connection->finish();
    // Otherwise the peer's EOF (on_read) or the linger timer finishes.
  });
  if (rc != 0) finish();
}

void HttpConnection::finish() {
  if (closing_) return;
  closing_ = true;
  phase_ = Phase::closing;
  if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_timer_stop(&timer_);
  server_->connections.erase(position_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), close_cb);
  report_websocket_closed();
}

void HttpConnection::report_websocket_closed() {
  if (!websocket_ || websocket_closed_reported_) return;
  websocket_closed_reported_ = true;
  auto on_closed = websocket_handlers_.on_closed;  // a copy: the handler may drop what holds it
  if (on_closed) on_closed();
}

void HttpConnection::close_cb(uv_handle_t* handle) {
  auto* connection = static_cast<HttpConnection*>(handle->data);
  if (--connection->open_handles_ > 0) return;
  auto last = std::move(connection->self_);  // the connection may be freed when this goes
}

// Responder

Responder::Responder(std::weak_ptr<HttpConnection> connection, uint64_t request_number)
    : connection_(std::move(connection)), request_number_(request_number), answered_(false) {}

Responder::Responder(Responder&& other) noexcept
    : connection_(std::move(other.connection_)),
      request_number_(other.request_number_),
      answered_(std::exchange(other.answered_, true)) {}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (!answered_) (*this)(json_error(500, "the request was not answered"));
    connection_ = std::move(other.connection_);
    request_number_ = other.request_number_;
    answered_ = std::exchange(other.answered_, true);
  }
  return *this;
}

Responder::~Responder() {
  if (!answered_) (*this)(json_error(500, "the request was not answered"));
}

void Responder::operator()(HttpResponse response) {
  if (answered_) return;
  answered_ = true;
  if (auto connection = connection_.lock()) connection->respond(request_number_, std::move(response));
}

bool Responder::connection_open() const {
  auto connection = connection_.lock();
  return !answered_ && connection && connection->open();
}

// HttpServer

void HttpServer::Impl::on_connection(uv_stream_t* listening, int status) {
  auto* impl = static_cast<Impl*>(listening->data);
  if (impl == nullptr || status < 0 || impl->closed) return;
  if (impl->connections.size() >= impl->limits.max_connections) {
    ++impl->counters.connections_refused_full;
    auto* refused = new uv_tcp_t;
    uv_tcp_init(listening->loop, refused);
    uv_accept(listening, reinterpret_cast<uv_stream_t*>(refused));
    uv_close(reinterpret_cast<uv_handle_t*>(refused), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  auto connection = std::make_shared<HttpConnection>(impl->shared_from_this());
  auto position = impl->connections.insert(impl->connections.end(), connection);
  if (connection->start(listening, position)) ++impl->counters.connections_accepted;
}

Expected<std::unique_ptr<HttpServer>, std::string> HttpServer::listen(uv_loop_t* loop, const proto::SocketAddress& address,
                                                                      std::shared_ptr<security::TlsContext> tls,
                                                                      HttpServerLimits limits, HttpHandlers handlers) {
  if (tls == nullptr) return Unexpected(std::string("listen: no TLS context"));
  auto impl = std::make_shared<Impl>();
  impl->loop = loop;
  impl->tls = std::move(tls);
  impl->limits = limits;
  impl->handlers = std::move(handlers);
  auto listener = transport::OwnedHandle<uv_tcp_t>::create(loop, uv_tcp_init);
  if (!listener) return Unexpected(std::string("listen: ") + uv_strerror(listener.error()));
  impl->listener = std::move(*listener);
  impl->listener->data = impl.get();
  sockaddr_storage bind_address{};
  transport::to_sockaddr(address, &bind_address);
  int rc = uv_tcp_bind(impl->listener.get(), reinterpret_cast<const sockaddr*>(&bind_address), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(impl->listener.get()), 511, Impl::on_connection);
  if (rc != 0) return Unexpected("bind " + address.to_string() + ": " + uv_strerror(rc));
  std::unique_ptr<HttpServer> server(new HttpServer());
  sockaddr_storage bound{};
  int length = sizeof bound;
  server->address_ = address;
  if (uv_tcp_getsockname(impl->listener.get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0)
    server->address_ = transport::from_sockaddr(reinterpret_cast<sockaddr*>(&bound));
  server->impl_ = std::move(impl);
  return server;
}

HttpServer::~HttpServer() { close(); }

void HttpServer::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  impl_->listener.reset();
  // finish() removes each connection from the list.
  while (!impl_->connections.empty()) {
    auto connection = impl_->connections.front();
    connection->finish();
  }
}

const HttpServerCounters& HttpServer::counters() const { return impl_->counters; }

size_t HttpServer::connection_count() const { return impl_->connections.size(); }

void HttpServer::replace_tls(std::shared_ptr<security::TlsContext> tls) { impl_->tls = std::move(tls); }

}  // namespace tsunagu::web
