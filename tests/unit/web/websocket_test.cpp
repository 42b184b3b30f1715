#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "security/digest.hpp"
#include "web/websocket.hpp"

using namespace tsunagu;
using namespace tsunagu::web;

namespace {

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(std::byte(v));
  return out;
}

// Moves every waiting byte from `from` to `to`; the messages `to` completes.
std::vector<WebSocketMessage> pass(WebSocketSession& from, WebSocketSession& to) {
  std::vector<WebSocketMessage> messages;
  Bytes wire = from.take_output();
  auto received = to.receive(wire, messages);
  REQUIRE(received.has_value());
  return messages;
}

}  // namespace

TEST_CASE("sha1: the FIPS 180 vectors the accept key rests on") {
  CHECK(to_hex(security::sha1(as_bytes("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(to_hex(security::sha1({})) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST_CASE("websocket: the accept key of RFC 6455's example handshake") {
  // RFC 6455 section 1.3.
  CHECK(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("websocket: RFC 6455's masked \"Hello\" frame is read, and the answer is unmasked") {
  WebSocketSession server;
  std::vector<WebSocketMessage> messages;
  // RFC 6455 section 5.7: a single-frame masked text message "Hello".
  Bytes frame = bytes_of({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  // In two pieces: the frame reader keeps partial frames.
  REQUIRE(server.receive(ByteView(frame).first(4), messages).has_value());
  CHECK(messages.empty());
  REQUIRE(server.receive(ByteView(frame).subspan(4), messages).has_value());
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].text);
  CHECK(messages[0].data == "Hello");
  REQUIRE(server.send_text("Hello").has_value());
  // Section 5.7: the unmasked "Hello" a server sends.
  CHECK(server.take_output() == bytes_of({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
}

TEST_CASE("websocket: an unmasked frame from a client is a protocol error") {
  WebSocketSession server;
  std::vector<WebSocketMessage> messages;
  auto received = server.receive(bytes_of({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), messages);
  CHECK(messages.empty());
  CHECK_FALSE(received.has_value());
  CHECK(server.finished());
}

TEST_CASE("websocket: messages round-trip between a client and a server session") {
  WebSocketSession server(WebSocketSession::Role::server);
  WebSocketSession client(WebSocketSession::Role::client);
  REQUIRE(client.send_text("{\"type\":\"hello\"}").has_value());
  REQUIRE(client.send_text(std::string(40000, 'x')).has_value());
  auto at_server = pass(client, server);
  REQUIRE(at_server.size() == 2);
  CHECK(at_server[0].data == "{\"type\":\"hello\"}");
  CHECK(at_server[1].data.size() == 40000);
  REQUIRE(server.send_text("{\"type\":\"voicemail_waiting\"}").has_value());
  auto at_client = pass(server, client);
  REQUIRE(at_client.size() == 1);
  CHECK(at_client[0].data == "{\"type\":\"voicemail_waiting\"}");
}

TEST_CASE("websocket: a ping is answered with a pong") {
  WebSocketSession server;
  std::vector<WebSocketMessage> messages;
  // Masked ping with payload "hi" (mask 0, so the payload reads as sent).
  REQUIRE(server.receive(bytes_of({0x89, 0x82, 0, 0, 0, 0, 'h', 'i'}), messages).has_value());
  CHECK(messages.empty());
  CHECK(server.take_output() == bytes_of({0x8a, 0x02, 'h', 'i'}));
}

TEST_CASE("websocket: a message over the size limit closes with 1009") {
  WebSocketLimits limits;
  limits.max_message_bytes = 1024;
  WebSocketSession server(WebSocketSession::Role::server, limits);
  WebSocketSession client(WebSocketSession::Role::client);
  REQUIRE(client.send_text(std::string(1025, 'a')).has_value());
  std::vector<WebSocketMessage> messages;
  Bytes wire = client.take_output();
  auto received = server.receive(wire, messages);
  CHECK_FALSE(received.has_value());
  CHECK(messages.empty());
  // The close frame wslay queued names the reason.
  std::vector<WebSocketMessage> none;
  Bytes close_frame = server.take_output();
  REQUIRE(client.receive(close_frame, none).has_value());
  CHECK(client.close_received());
  CHECK(client.peer_close_code() == 1009);
  SUBCASE("and a message to send over it is refused") {
    WebSocketSession small(WebSocketSession::Role::server, limits);
    auto sent = small.send_text(std::string(1025, 'b'));
    REQUIRE_FALSE(sent.has_value());
    CHECK(sent.error().code == WebSocketErrc::too_large);
  }
}

TEST_CASE("websocket: the output queue is bounded") {
  WebSocketLimits limits;
  limits.max_queued_output = 4096;
  WebSocketSession server(WebSocketSession::Role::server, limits);
  REQUIRE(server.send_text(std::string(3000, 'a')).has_value());
  auto sent = server.send_text(std::string(3000, 'b'));
  REQUIRE_FALSE(sent.has_value());
  CHECK(sent.error().code == WebSocketErrc::output_full);
  server.take_output();
  CHECK(server.send_text(std::string(3000, 'c')).has_value());
}

TEST_CASE("websocket: a close handshake started by the client") {
  WebSocketSession server;
  WebSocketSession client(WebSocketSession::Role::client);
  client.send_close(1000, "bye");
  CHECK(client.close_sent());
  auto at_server = pass(client, server);
  CHECK(at_server.empty());
  CHECK(server.close_received());
  CHECK(server.peer_close_code() == 1000);
  CHECK(server.close_sent());  // echoed by wslay
  CHECK(server.finished());
  pass(server, client);
  CHECK(client.finished());
  auto after = server.send_text("late");
  REQUIRE_FALSE(after.has_value());
  CHECK(after.error().code == WebSocketErrc::closed);
}

TEST_CASE("websocket: a close started by the server is not an error") {
  WebSocketSession server;
  WebSocketSession client(WebSocketSession::Role::client);
  server.send_close(1001, std::string(200, 'r'));  // the reason is cut to fit a control frame
  CHECK(server.close_sent());
  auto at_client = pass(server, client);
  CHECK(client.peer_close_code() == 1001);
  std::vector<WebSocketMessage> messages;
  Bytes echo = client.take_output();
  REQUIRE(server.receive(echo, messages).has_value());
  CHECK(server.finished());
}

TEST_CASE("websocket: invalid UTF-8 in a text message is a protocol error") {
  WebSocketSession server;
  std::vector<WebSocketMessage> messages;
  auto received = server.receive(bytes_of({0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28}), messages);
  CHECK(messages.empty());
  CHECK_FALSE(received.has_value());
}
