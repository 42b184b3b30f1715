// The HTTPS server on loopback with real TLS: a client TlsSession over a real
// libuv TCP connection, the test's own certificates (tests/unit/security/test_pki.hpp).
#include <doctest/doctest.h>

#include <uv.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../security/test_pki.hpp"
#include "security/tls_session.hpp"
#include "web/http_server.hpp"
#include "web/websocket.hpp"

using namespace tsunagu;
using namespace tsunagu::web;

namespace {

// Runs the loop until `done` or `timeout_ms`; a ticking timer keeps
// UV_RUN_ONCE from blocking when nothing else is due.
template <class Done>
bool run_until(uv_loop_t* loop, Done done, uint64_t timeout_ms = 5000) {
  auto* tick = new uv_timer_t;
  uv_timer_init(loop, tick);
  uv_timer_start(tick, [](uv_timer_t*) {}, 5, 5);
  uint64_t deadline = uv_now(loop) + timeout_ms;
  while (!done() && uv_now(loop) < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(tick), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  return done();
}

struct ParsedResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// One whole response off the front of `buffer` (Content-Length framing, as
// the server always writes), or nullopt when it has not all arrived.
std::optional<ParsedResponse> take_response(std::string& buffer) {
  size_t end = buffer.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  ParsedResponse response;
  std::string head = buffer.substr(0, end);
  response.status = std::stoi(head.substr(9, 3));
  size_t at = head.find("\r\n");
  while (at != std::string::npos) {
    size_t next = head.find("\r\n", at + 2);
    std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = line.substr(colon + 2);
    at = next;
  }
  size_t length = response.headers.count("content-length") ? std::stoul(response.headers["content-length"]) : 0;
  if (buffer.size() < end + 4 + length) return std::nullopt;
  response.body = buffer.substr(end + 4, length);
  buffer.erase(0, end + 4 + length);
  return response;
}

// A TLS client over a real TCP connection; everything it decrypts collects in
// `received`.
struct TestClient {
  uv_loop_t* loop;
  uv_tcp_t tcp{};
  uv_connect_t connect_request{};
  std::unique_ptr<security::TlsSession> tls;
  std::string received;
  bool connected = false;
  bool ended = false;  // EOF, close_notify or an error
  bool closed = false;

  TestClient(uv_loop_t* l, const security::testing::Pki& pki, uint16_t port) : loop(l) {
    security::TlsContext::ClientOptions options;
    options.ca_file = pki.ca_file;
    auto context = security::TlsContext::client(options);
    REQUIRE(context.has_value());
    tls = security::TlsSession::create(*context, security::TlsSession::Role::client, "127.0.0.1");
    REQUIRE(tls != nullptr);
    uv_tcp_init(loop, &tcp);
    tcp.data = this;
    connect_request.data = this;
    sockaddr_in address{};
    uv_ip4_addr("127.0.0.1", port, &address);
    REQUIRE(uv_tcp_connect(&connect_request, &tcp, reinterpret_cast<const sockaddr*>(&address),
                           [](uv_connect_t* request, int status) {
                             auto* client = static_cast<TestClient*>(request->data);
                             if (status != 0 || client->closed) {
                               client->ended = true;
                               return;
                             }
                             client->connected = true;
                             uv_read_start(reinterpret_cast<uv_stream_t*>(&client->tcp),
                                           [](uv_handle_t*, size_t, uv_buf_t* buf) {
                                             static char storage[65536];
                                             *buf = uv_buf_init(storage, sizeof storage);
                                           },
                                           [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                                             static_cast<TestClient*>(s->data)->on_read(n, buf);
                                           });
                             REQUIRE(client->tls->start().has_value());
                             client->flush();
                           }) == 0);
  }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;
  ~TestClient() {
    close();
    while (!closed) uv_run(loop, UV_RUN_ONCE);
  }

  void on_read(ssize_t n, const uv_buf_t* buf) {
    if (n < 0) {
      ended = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
      return;
    }
    Bytes plain;
    auto ok = tls->receive(ByteView(reinterpret_cast<const std::byte*>(buf->base), static_cast<size_t>(n)), plain);
    flush();
    received.append(as_chars(plain));
    if (!ok || tls->peer_closed()) ended = true;
  }

  void send(std::string_view bytes) {
    REQUIRE(tls->send(as_bytes(bytes)).has_value());
    flush();
  }

  void flush() {
    if (!tls->has_output() || closed) return;
    struct Write {
      uv_write_t request;
      Bytes bytes;
    };
    auto* write = new Write{{}, tls->take_output()};
    write->request.data = write;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(write->bytes.data()), static_cast<unsigned>(write->bytes.size()));
    if (uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                 [](uv_write_t* r, int) { delete static_cast<Write*>(r->data); }) != 0)
      delete write;
  }

  void close() {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) { static_cast<TestClient*>(h->data)->closed = true; });
  }

  std::optional<ParsedResponse> await_response(uv_loop_t* l, uint64_t timeout_ms = 5000) {
    std::optional<ParsedResponse> response;
    run_until(l, [&] {
      if (!response) response = take_response(received);
      return response.has_value() || ended;
    }, timeout_ms);
    if (!response) response = take_response(received);
    return response;
  }
};

struct ServerFixture {
  uv_loop_t loop{};
  security::testing::Pki pki;
  std::unique_ptr<HttpServer> server;

  ServerFixture() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~ServerFixture() {
    server.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }

  void start(HttpServerLimits limits, HttpHandlers handlers) {
    security::TlsContext::ServerOptions options;
    options.certificate_chain_file = pki.server.certificate;
    options.private_key_file = pki.server.key;
    auto tls = security::TlsContext::server(options);
    REQUIRE(tls.has_value());
    auto listening = HttpServer::listen(&loop, *proto::SocketAddress::parse("127.0.0.1:0"), *tls, limits, std::move(handlers));
    REQUIRE_MESSAGE(listening.has_value(), (listening ? "" : listening.error()));
    server = std::move(*listening);
    REQUIRE(server->address().port != 0);
  }

  std::unique_ptr<TestClient> client() { return std::make_unique<TestClient>(&loop, pki, server->address().port); }
};

HttpHandlers echo_path_handlers(std::vector<HttpRequest>* seen = nullptr) {
  HttpHandlers handlers;
  handlers.on_request = [seen](HttpRequest request, Responder respond) {
    HttpResponse response;
    response.headers.add("content-type", "text/plain");
    response.body = request.method + " " + request.path + " from " + request.client_address;
    if (seen) seen->push_back(std::move(request));
    respond(std::move(response));
  };
  return handlers;
}

}  // namespace

TEST_CASE("server: two requests on one keep-alive connection, each with the security headers") {
  ServerFixture f;
  std::vector<HttpRequest> seen;
  f.start({}, echo_path_handlers(&seen));
  auto client = f.client();
  client->send("GET /first HTTP/1.1\r\nHost: node.example\r\n\r\n");
  auto first = client->await_response(&f.loop);
  REQUIRE(first.has_value());
  CHECK(first->status == 200);
  CHECK(first->body.rfind("GET /first from 127.0.0.1:", 0) == 0);
  CHECK(first->headers["x-content-type-options"] == "nosniff");
  CHECK(first->headers["referrer-policy"] == "no-referrer");
  CHECK(first->headers["strict-transport-security"] == "max-age=31536000");
  CHECK(first->headers.count("connection") == 0);
  client->send("POST /second HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  auto second = client->await_response(&f.loop);
  REQUIRE(second.has_value());
  CHECK(second->body.rfind("POST /second", 0) == 0);
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].body == "abc");
  CHECK_FALSE(client->ended);
  CHECK(f.server->connection_count() == 1);
  CHECK(f.server->counters().connections_accepted == 1);
  CHECK(f.server->counters().requests == 2);
}

TEST_CASE("server: pipelined requests wait for the answer before them") {
  ServerFixture f;
  std::vector<std::string> paths;
  std::vector<Responder> pending;
  HttpHandlers handlers;
  handlers.on_request = [&](HttpRequest request, Responder respond) {
    paths.push_back(request.path);
    pending.push_back(std::move(respond));
  };
  f.start({}, handlers);
  auto client = f.client();
  client->send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  REQUIRE(run_until(&f.loop, [&] { return paths.size() == 1; }));
  run_until(&f.loop, [] { return false; }, 100);
  CHECK(paths.size() == 1);  // /b is not handled while /a is unanswered
  HttpResponse a;
  a.body = "A";
  pending[0](a);
  CHECK_FALSE(pending[0].connection_open());  // answered
  REQUIRE(run_until(&f.loop, [&] { return paths.size() == 2; }));
  HttpResponse b;
  b.body = "B";
  pending[1](b);
  auto first = client->await_response(&f.loop);
  auto second = client->await_response(&f.loop);
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK(first->body == "A");
  CHECK(second->body == "B");
}

TEST_CASE("server: a slow client is cut at the header timeout with 408") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.header_timeout_ms = 300;
  f.start(limits, echo_path_handlers());
  auto client = f.client();
  client->send("GET /slow HTTP/1.1\r\nHost: node.exa");
  auto response = client->await_response(&f.loop, 3000);
  REQUIRE(response.has_value());
  CHECK(response->status == 408);
  CHECK(response->headers["connection"] == "close");
  CHECK(run_until(&f.loop, [&] { return client->ended; }, 3000));
  CHECK(f.server->counters().timeouts == 1);
  CHECK(run_until(&f.loop, [&] { return f.server->connection_count() == 0; }, 3000));
}

TEST_CASE("server: a keep-alive connection with no request is closed at the idle timeout") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.idle_timeout_ms = 200;
  f.start(limits, echo_path_handlers());
  auto client = f.client();
  client->send("GET / HTTP/1.1\r\n\r\n");
  REQUIRE(client->await_response(&f.loop).has_value());
  CHECK(run_until(&f.loop, [&] { return client->ended; }, 3000));
  CHECK(f.server->counters().timeouts == 1);
}

TEST_CASE("server: a body over the limit is answered 413 and the server keeps serving") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.parser.max_body_bytes = 1024;
  f.start(limits, echo_path_handlers());
  auto client = f.client();
  client->send("POST /api/voicemail HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + std::string(2000, 'x'));
  auto response = client->await_response(&f.loop);
  REQUIRE(response.has_value());
  CHECK(response->status == 413);
  CHECK(response->headers["content-type"] == "application/json");
  CHECK(response->body.find("\"error\":\"payload_too_large\"") != std::string::npos);
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
  CHECK(f.server->counters().bad_requests == 1);

  auto next = f.client();
  next->send("GET /still-here HTTP/1.1\r\n\r\n");
  auto served = next->await_response(&f.loop);
  REQUIRE(served.has_value());
  CHECK(served->status == 200);
}

TEST_CASE("server: a malformed request gets a JSON 400 and the connection closes") {
  ServerFixture f;
  f.start({}, echo_path_handlers());
  auto client = f.client();
  client->send("GET /a%zz HTTP/1.1\r\n\r\n");
  auto response = client->await_response(&f.loop);
  REQUIRE(response.has_value());
  CHECK(response->status == 400);
  CHECK(response->body.rfind("{\"error\":\"bad_request\",\"message\":", 0) == 0);
  CHECK(response->headers["x-content-type-options"] == "nosniff");
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
}

TEST_CASE("server: Connection: close is honoured after the answer") {
  ServerFixture f;
  f.start({}, echo_path_handlers());
  auto client = f.client();
  client->send("HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n");
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
  CHECK(client->received.find("content-length: ") != std::string::npos);
  CHECK(client->received.substr(client->received.size() - 4) == "\r\n\r\n");  // HEAD: no body
}

TEST_CASE("server: a Responder kept after the client left does nothing") {
  ServerFixture f;
  std::optional<Responder> kept;
  HttpHandlers handlers;
  handlers.on_request = [&](HttpRequest, Responder respond) { kept.emplace(std::move(respond)); };
  f.start({}, handlers);
  {
    auto client = f.client();
    client->send("GET / HTTP/1.1\r\n\r\n");
    REQUIRE(run_until(&f.loop, [&] { return kept.has_value(); }));
    CHECK(kept->connection_open());
  }
  REQUIRE(run_until(&f.loop, [&] { return f.server->connection_count() == 0; }));
  CHECK_FALSE(kept->connection_open());
  (*kept)(HttpResponse{});
}

TEST_CASE("server: connections over max_connections are refused") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.max_connections = 1;
  f.start(limits, echo_path_handlers());
  auto first = f.client();
  first->send("GET / HTTP/1.1\r\n\r\n");
  REQUIRE(first->await_response(&f.loop).has_value());
  auto second = f.client();
  CHECK(run_until(&f.loop, [&] { return second->ended; }));
  CHECK(f.server->counters().connections_refused_full == 1);
}

TEST_CASE("server: a WebSocket echo, closed by the client") {
  ServerFixture f;
  std::shared_ptr<WebSocketChannel> channel;
  std::vector<std::string> messages;
  bool closed = false;
  HttpHandlers handlers;
  handlers.on_websocket = [&](const HttpRequest& request,
                              std::function<void(std::shared_ptr<WebSocketChannel>)>& accepted)
      -> std::variant<WebSocketHandlers, HttpResponse> {
    if (request.path != "/api/events") {
      HttpResponse refusal;
      refusal.status = 404;
      return refusal;
    }
    accepted = [&](std::shared_ptr<WebSocketChannel> given) { channel = std::move(given); };
    WebSocketHandlers ws;
    ws.on_message = [&](std::string_view text) {
      messages.emplace_back(text);
      channel->send_text("echo: " + std::string(text));
    };
    ws.on_closed = [&] { closed = true; };
    return ws;
  };
  f.start({}, handlers);
  auto client = f.client();
  WebSocketSession ws(WebSocketSession::Role::client);
  REQUIRE(ws.send_text("hello").has_value());
  Bytes first_frame = ws.take_output();
  // The first frame rides in the same write as the handshake.
  client->send(
      "GET /api/events HTTP/1.1\r\nHost: node.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
      std::string(as_chars(first_frame)));
  auto switching = client->await_response(&f.loop);
  REQUIRE(switching.has_value());
  CHECK(switching->status == 101);
  CHECK(switching->headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  REQUIRE(channel != nullptr);
  CHECK(channel->open());
  std::vector<WebSocketMessage> got;
  REQUIRE(run_until(&f.loop, [&] {
    if (!client->received.empty()) {
      REQUIRE(ws.receive(as_bytes(client->received), got).has_value());
      client->received.clear();
    }
    return !got.empty();
  }));
  CHECK(got[0].data == "echo: hello");
  CHECK(messages == std::vector<std::string>{"hello"});

  REQUIRE(ws.send_text(std::string(1000, 'z')).has_value());
  client->send(as_chars(ws.take_output()));
  got.clear();
  REQUIRE(run_until(&f.loop, [&] {
    if (!client->received.empty()) {
      REQUIRE(ws.receive(as_bytes(client->received), got).has_value());
      client->received.clear();
    }
    return !got.empty();
  }));
  CHECK(got[0].data.size() == 1006);

  ws.send_close(1000, "done");
  client->send(as_chars(ws.take_output()));
  CHECK(run_until(&f.loop, [&] { return closed && client->ended; }));
  CHECK_FALSE(channel->open());
  channel->send_text("after the end");  // nothing happens
  CHECK(f.server->counters().websocket_sessions == 1);
  CHECK(f.server->counters().websocket_messages == 2);
}

TEST_CASE("server: a WebSocket refused by the handler, and handshakes the server refuses itself") {
  ServerFixture f;
  HttpHandlers handlers;
  handlers.on_websocket = [](const HttpRequest&, std::function<void(std::shared_ptr<WebSocketChannel>)>&)
      -> std::variant<WebSocketHandlers, HttpResponse> {
    HttpResponse refusal;
    refusal.status = 401;
    refusal.body = "{\"error\":\"unauthenticated\"}";
    return refusal;
  };
  f.start({}, handlers);
  const std::string upgrade = "GET /api/events HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  {
    auto client = f.client();
    client->send(upgrade + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    auto response = client->await_response(&f.loop);
    REQUIRE(response.has_value());
    CHECK(response->status == 401);
  }
  {
    auto client = f.client();
    client->send(upgrade + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    auto response = client->await_response(&f.loop);
    REQUIRE(response.has_value());
    CHECK(response->status == 426);
    CHECK(response->headers["sec-websocket-version"] == "13");
  }
  {
    auto client = f.client();
    client->send(upgrade + "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
    auto response = client->await_response(&f.loop);
    REQUIRE(response.has_value());
    CHECK(response->status == 400);
  }
}

TEST_CASE("server: close() ends open WebSockets and stops listening") {
  ServerFixture f;
  bool closed = false;
  HttpHandlers handlers;
  handlers.on_websocket = [&](const HttpRequest&, std::function<void(std::shared_ptr<WebSocketChannel>)>&)
      -> std::variant<WebSocketHandlers, HttpResponse> {
    WebSocketHandlers ws;
    ws.on_closed = [&] { closed = true; };
    return ws;
  };
  f.start({}, handlers);
  auto client = f.client();
  client->send(
      "GET /api/events HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  auto switching = client->await_response(&f.loop);
  REQUIRE(switching.has_value());
  REQUIRE(switching->status == 101);
  f.server->close();
  CHECK(closed);
  CHECK(f.server->connection_count() == 0);
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
  auto late = f.client();
  CHECK(run_until(&f.loop, [&] { return late->ended; }));
  CHECK(late->received.empty());
}

TEST_CASE("server: the connection closes after max_requests_per_connection") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.max_requests_per_connection = 2;
  f.start(limits, echo_path_handlers());
  auto client = f.client();
  client->send("GET /1 HTTP/1.1\r\n\r\n");
  auto first = client->await_response(&f.loop);
  REQUIRE(first.has_value());
  CHECK(first->headers.count("connection") == 0);
  client->send("GET /2 HTTP/1.1\r\n\r\n");
  auto second = client->await_response(&f.loop);
  REQUIRE(second.has_value());
  CHECK(second->headers["connection"] == "close");
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
}

TEST_CASE("server: an unanswered request is answered 500 when its Responder is dropped") {
  ServerFixture f;
  HttpHandlers handlers;
  handlers.on_request = [](HttpRequest, Responder) {};
  f.start({}, handlers);
  auto client = f.client();
  client->send("GET / HTTP/1.1\r\n\r\n");
  auto response = client->await_response(&f.loop);
  REQUIRE(response.has_value());
  CHECK(response->status == 500);
  client->send("GET /again HTTP/1.1\r\n\r\n");
  auto again = client->await_response(&f.loop);
  REQUIRE(again.has_value());
  CHECK(again->status == 500);
}

TEST_CASE("server: Expect: 100-continue gets 100 Continue before the body is sent") {
  ServerFixture f;
  std::vector<HttpRequest> seen;
  f.start({}, echo_path_handlers(&seen));
  auto client = f.client();
  client->send("POST /upload HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  REQUIRE(run_until(&f.loop, [&] { return client->received.find("\r\n\r\n") != std::string::npos; }));
  CHECK(client->received == "HTTP/1.1 100 Continue\r\n\r\n");
  client->received.clear();
  client->send("hello");
  auto response = client->await_response(&f.loop);
  REQUIRE(response.has_value());
  CHECK(response->status == 200);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].body == "hello");
}

TEST_CASE("server: a body that trickles in is cut at the header timeout too") {
  ServerFixture f;
  HttpServerLimits limits;
  limits.header_timeout_ms = 300;
  f.start(limits, echo_path_handlers());
  auto client = f.client();
  client->send("POST /upload HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly a part");
  auto response = client->await_response(&f.loop, 3000);
  REQUIRE(response.has_value());
  CHECK(response->status == 408);
  CHECK(f.server->counters().timeouts == 1);
}

namespace {

HttpHandlers websocket_echo(std::shared_ptr<WebSocketChannel>& channel, bool& closed) {
  HttpHandlers handlers;
  handlers.on_websocket = [&channel, &closed](const HttpRequest&,
                                              std::function<void(std::shared_ptr<WebSocketChannel>)>& accepted)
      -> std::variant<WebSocketHandlers, HttpResponse> {
    accepted = [&channel](std::shared_ptr<WebSocketChannel> given) { channel = std::move(given); };
    WebSocketHandlers ws;
    ws.on_message = [&channel](std::string_view text) { channel->send_text(std::string(text)); };
    ws.on_closed = [&closed] { closed = true; };
    return ws;
  };
  return handlers;
}

const char* const websocket_handshake =
    "GET /api/events HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

}  // namespace

TEST_CASE("server: a WebSocket message over the limit closes the connection with 1009") {
  ServerFixture f;
  std::shared_ptr<WebSocketChannel> channel;
  bool closed = false;
  HttpServerLimits limits;
  limits.max_websocket_message = 1024;
  f.start(limits, websocket_echo(channel, closed));
  auto client = f.client();
  client->send(websocket_handshake);
  auto switching = client->await_response(&f.loop);
  REQUIRE(switching.has_value());
  REQUIRE(switching->status == 101);
  WebSocketSession ws(WebSocketSession::Role::client);
  REQUIRE(ws.send_text(std::string(2000, 'q')).has_value());
  client->send(as_chars(ws.take_output()));
  REQUIRE(run_until(&f.loop, [&] { return closed && client->ended; }));
  std::vector<WebSocketMessage> got;
  (void)ws.receive(as_bytes(client->received), got);
  CHECK(got.empty());
  CHECK(ws.close_received());
  CHECK(ws.peer_close_code() == 1009);
}

TEST_CASE("server: a silent WebSocket is closed at its idle timeout with 1001") {
  ServerFixture f;
  std::shared_ptr<WebSocketChannel> channel;
  bool closed = false;
  HttpServerLimits limits;
  limits.websocket_idle_timeout_ms = 200;
  f.start(limits, websocket_echo(channel, closed));
  auto client = f.client();
  client->send(websocket_handshake);
  auto switching = client->await_response(&f.loop);
  REQUIRE(switching.has_value());
  REQUIRE(run_until(&f.loop, [&] { return closed && client->ended; }, 3000));
  WebSocketSession ws(WebSocketSession::Role::client);
  std::vector<WebSocketMessage> got;
  (void)ws.receive(as_bytes(client->received), got);
  CHECK(ws.peer_close_code() == 1001);
  CHECK(f.server->counters().timeouts == 1);
}

TEST_CASE("server: a handler may close the server while it runs") {
  ServerFixture f;
  HttpHandlers handlers;
  handlers.on_request = [&](HttpRequest, Responder respond) {
    f.server->close();
    respond(HttpResponse{});  // the connection is gone: nothing happens
  };
  f.start({}, handlers);
  auto client = f.client();
  client->send("GET / HTTP/1.1\r\n\r\nGET /pipelined HTTP/1.1\r\n\r\n");
  CHECK(run_until(&f.loop, [&] { return client->ended; }));
  CHECK(f.server->connection_count() == 0);
  CHECK(f.server->counters().requests == 1);
}

TEST_CASE("server: listening on a port in use is an error for people") {
  ServerFixture f;
  f.start({}, echo_path_handlers());
  security::TlsContext::ServerOptions options;
  options.certificate_chain_file = f.pki.server.certificate;
  options.private_key_file = f.pki.server.key;
  auto tls = security::TlsContext::server(options);
  REQUIRE(tls.has_value());
  auto second = HttpServer::listen(&f.loop, f.server->address(), *tls, {}, echo_path_handlers());
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().find("address already in use") != std::string::npos);
}
