#include <doctest/doctest.h>

#include <string>

#include "web/http_request_parser.hpp"

using namespace tsunagu::web;

namespace {

HttpRequest parse_one(std::string_view bytes, HttpParserLimits limits = {}) {
  HttpRequestParser parser(limits);
  auto requests = parser.feed(bytes);
  REQUIRE_MESSAGE(requests.has_value(), (requests ? "" : requests.error().detail));
  REQUIRE(requests->size() == 1);
  return std::move(requests->front());
}

int refusal_status(std::string_view bytes, HttpParserLimits limits = {}) {
  HttpRequestParser parser(limits);
  auto requests = parser.feed(bytes);
  REQUIRE_FALSE(requests.has_value());
  CHECK(parser.failed());
  return requests.error().status;
}

}  // namespace

TEST_CASE("parser: a GET with headers and a query") {
  auto request = parse_one(
      "GET /api/lookup?id=alice&kind=name HTTP/1.1\r\nHost: node.example\r\nX-Thing:  spaced value \r\n\r\n");
  CHECK(request.method == "GET");
  CHECK(request.target == "/api/lookup?id=alice&kind=name");
  CHECK(request.path == "/api/lookup");
  REQUIRE(request.query.size() == 2);
  CHECK(*request.query_value("id") == "alice");
  CHECK(*request.query_value("kind") == "name");
  CHECK(request.query_value("missing") == nullptr);
  CHECK(*request.headers.find("HOST") == "node.example");
  CHECK(*request.headers.find("x-thing") == "spaced value");
  CHECK(request.headers.entries[0].first == "host");
  CHECK(request.keep_alive);
  CHECK_FALSE(request.upgrade);
  CHECK(request.body.empty());
}

TEST_CASE("parser: a POST body by Content-Length, split byte by byte") {
  std::string wire = "POST /api/login HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"id\":\"a\"}!";
  HttpRequestParser parser;
  std::vector<HttpRequest> got;
  for (char c : wire) {
    auto requests = parser.feed(std::string_view(&c, 1));
    REQUIRE(requests.has_value());
    for (auto& r : *requests) got.push_back(std::move(r));
  }
  REQUIRE(got.size() == 1);
  CHECK(got[0].method == "POST");
  CHECK(got[0].body == "{\"id\":\"a\"}!");
}

TEST_CASE("parser: a chunked body is decoded") {
  auto request = parse_one(
      "PUT /api/profile HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  CHECK(request.body == "hello world");
}

TEST_CASE("parser: pipelined requests come one at a time, in order") {
  HttpRequestParser parser;
  parser.append("GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\nGET /thr");
  auto first = parser.next();
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK((*first)->path == "/one");
  CHECK(parser.buffered() > 0);
  auto second = parser.next();
  REQUIRE(second.has_value());
  REQUIRE(second->has_value());
  CHECK((*second)->path == "/two");
  auto third = parser.next();
  REQUIRE(third.has_value());
  CHECK_FALSE(third->has_value());
  CHECK(parser.in_request());
  parser.append("ee HTTP/1.1\r\n\r\n");
  auto completed = parser.next();
  REQUIRE(completed.has_value());
  REQUIRE(completed->has_value());
  CHECK((*completed)->path == "/three");
}

TEST_CASE("parser: Connection: close and HTTP/1.0 clear keep_alive") {
  CHECK_FALSE(parse_one("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
  CHECK_FALSE(parse_one("GET / HTTP/1.0\r\n\r\n").keep_alive);
  CHECK(parse_one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
}

TEST_CASE("parser: a WebSocket upgrade stops the parser and leaves the frames") {
  HttpRequestParser parser;
  auto requests = parser.feed(
      "GET /api/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x37\xfa");
  REQUIRE(requests.has_value());
  REQUIRE(requests->size() == 1);
  CHECK(requests->front().upgrade);
  CHECK(parser.upgraded());
  CHECK(parser.take_buffered() == "\x81\x85\x37\xfa");
}

TEST_CASE("parser: percent-decoding of path and query") {
  auto request = parse_one("GET /a%20b/c%2Fd?q=caf%C3%A9+bar&x=%3D%26 HTTP/1.1\r\n\r\n");
  CHECK(request.path == "/a b/c/d");
  CHECK(*request.query_value("q") == "caf\xC3\xA9 bar");
  CHECK(*request.query_value("x") == "=&");
  CHECK(refusal_status("GET /a%00b HTTP/1.1\r\n\r\n") == 400);
  CHECK(refusal_status("GET /a%zz HTTP/1.1\r\n\r\n") == 400);
  CHECK(refusal_status("GET /a% HTTP/1.1\r\n\r\n") == 400);
  CHECK(refusal_status("GET /?q=%4 HTTP/1.1\r\n\r\n") == 400);
}

TEST_CASE("parser: traversal is kept for handlers and flagged by path_is_safe") {
  auto request = parse_one("GET /static/%2E%2E/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n");
  CHECK(request.path == "/static/../../etc/passwd");
  CHECK_FALSE(path_is_safe(request.path));
  CHECK_FALSE(path_is_safe("/a/./b"));
  CHECK_FALSE(path_is_safe("/.."));
  CHECK_FALSE(path_is_safe("/a\\..\\b"));
  CHECK_FALSE(path_is_safe("relative"));
  CHECK_FALSE(path_is_safe(std::string_view("/a\0b", 4)));
  CHECK(path_is_safe("/static/app.js"));
  CHECK(path_is_safe("/"));
  CHECK(path_is_safe("/a..b/.hidden"));
}

TEST_CASE("parser: every limit gives its status") {
  HttpParserLimits limits;
  limits.max_header_bytes = 256;
  limits.max_headers = 4;
  limits.max_target_bytes = 32;
  limits.max_body_bytes = 16;
  SUBCASE("body over the limit by Content-Length: 413 before the body arrives") {
    CHECK(refusal_status("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", limits) == 413);
  }
  SUBCASE("chunked body over the limit: 413") {
    CHECK(refusal_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n",
                         limits) == 413);
  }
  SUBCASE("a body at the limit is fine") {
    CHECK(parse_one("POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef", limits).body.size() == 16);
  }
  SUBCASE("too many headers: 431") {
    CHECK(refusal_status("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n\r\n", limits) == 431);
  }
  SUBCASE("headers too large: 431") {
    CHECK(refusal_status("GET / HTTP/1.1\r\na: " + std::string(300, 'x') + "\r\n\r\n", limits) == 431);
  }
  SUBCASE("target too long: 414") {
    CHECK(refusal_status("GET /" + std::string(40, 'a') + " HTTP/1.1\r\n\r\n", limits) == 414);
  }
  SUBCASE("headers beyond http-parser's own bound: 431") {
    HttpParserLimits big;
    big.max_header_bytes = 1 << 20;
    CHECK(refusal_status("GET / HTTP/1.1\r\na: " + std::string(90 * 1024, 'x') + "\r\n\r\n", big) == 431);
  }
}

TEST_CASE("parser: malformed and unsupported requests") {
  CHECK(refusal_status("GARBAGE\r\n\r\n") == 400);
  CHECK(refusal_status("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n") == 400);
  CHECK(refusal_status("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
  CHECK(refusal_status("GET / HTTP/2.0\r\n\r\n") == 505);
  CHECK(refusal_status("TRACE / HTTP/1.1\r\n\r\n") == 501);
  CHECK(refusal_status("CONNECT node.example:443 HTTP/1.1\r\n\r\n") != 0);
  CHECK(refusal_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") == 501);
  CHECK(refusal_status("GET * HTTP/1.1\r\n\r\n") == 400);
}

TEST_CASE("parser: an error is sticky") {
  HttpRequestParser parser;
  auto first = parser.feed("BAD\x01 / HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(first.has_value());
  auto again = parser.feed("GET / HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().status == first.error().status);
}

TEST_CASE("parser: an absolute-form target gives its path") {
  auto request = parse_one("GET http://node.example/api/session?x=1 HTTP/1.1\r\n\r\n");
  CHECK(request.path == "/api/session");
  CHECK(*request.query_value("x") == "1");
}

TEST_CASE("parser: Content-Length beside Transfer-Encoding is refused (request smuggling)") {
  CHECK(refusal_status("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
}

TEST_CASE("parser: header names are lower-cased, repeated headers all kept") {
  auto request = parse_one("GET / HTTP/1.1\r\nAccept: a\r\nACCEPT: b\r\n\r\n");
  REQUIRE(request.headers.entries.size() == 2);
  CHECK(request.headers.entries[1].first == "accept");
  CHECK(request.headers.entries[1].second == "b");
}

TEST_CASE("parser: Expect: 100-continue is reported once; other expectations are 417") {
  HttpRequestParser parser;
  parser.append("POST /api/voicemail HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  auto none = parser.next();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  CHECK(parser.take_expect_continue());
  CHECK_FALSE(parser.take_expect_continue());
  parser.append("abc");
  auto done = parser.next();
  REQUIRE(done.has_value());
  REQUIRE(done->has_value());
  CHECK((*done)->body == "abc");
  CHECK(refusal_status("POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: something\r\n\r\nx") == 417);
}
