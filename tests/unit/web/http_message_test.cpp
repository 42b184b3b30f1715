#include <doctest/doctest.h>

#include "web/cookies.hpp"
#include "web/http_message.hpp"

using namespace tsunagu::web;

TEST_CASE("message: serialize_response states the length and closes when asked") {
  HttpResponse response;
  response.status = 404;
  response.headers.add("Content-Type", "application/json");
  response.headers.add("Content-Length", "999");  // ours wins
  response.body = "{}";
  std::string wire = serialize_response(response, false);
  CHECK(wire.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  CHECK(wire.find("content-type: application/json\r\n") != std::string::npos);
  CHECK(wire.find("content-length: 2\r\n") != std::string::npos);
  CHECK(wire.find("999") == std::string::npos);
  CHECK(wire.find("connection: close\r\n") != std::string::npos);
  CHECK(wire.find("date: ") != std::string::npos);
  CHECK(wire.substr(wire.size() - 6) == "\r\n\r\n{}");
}

TEST_CASE("message: HEAD keeps the length and drops the body; 204 has neither") {
  HttpResponse response;
  response.body = "hello";
  std::string head = serialize_response(response, true, true);
  CHECK(head.find("content-length: 5\r\n") != std::string::npos);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
  CHECK(head.find("connection:") == std::string::npos);
  HttpResponse empty;
  empty.status = 204;
  empty.body = "ignored";
  std::string no_content = serialize_response(empty, true);
  CHECK(no_content.find("content-length") == std::string::npos);
  CHECK(no_content.find("ignored") == std::string::npos);
}

TEST_CASE("message: reason phrases") {
  CHECK(reason_phrase(200) == "OK");
  CHECK(reason_phrase(413) == "Payload Too Large");
  CHECK(reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(reason_phrase(599) == "Unknown");
}

TEST_CASE("message: headers find case-insensitively and set replaces") {
  Headers headers;
  headers.add("X-A", "1");
  headers.add("x-a", "2");
  CHECK(*headers.find("X-a") == "1");
  headers.set("X-A", "3");
  REQUIRE(headers.entries.size() == 1);
  CHECK(headers.entries[0] == std::pair<std::string, std::string>("x-a", "3"));
}

TEST_CASE("cookies: parse a Cookie header") {
  auto cookies = parse_cookie_header(" tsunagu_session=abc123; theme=\"dark\"; broken; =nameless;empty=");
  REQUIRE(cookies.size() == 3);
  CHECK(cookies[0] == std::pair<std::string, std::string>("tsunagu_session", "abc123"));
  CHECK(cookies[1] == std::pair<std::string, std::string>("theme", "dark"));
  CHECK(cookies[2] == std::pair<std::string, std::string>("empty", ""));
  CHECK(parse_cookie_header("a=1; b=2; c=3", 2).size() == 2);
}

TEST_CASE("cookies: find_cookie looks through every Cookie header") {
  Headers headers;
  headers.add("Cookie", "a=1");
  headers.add("Cookie", "tsunagu_session=s; b=2");
  CHECK(find_cookie(headers, "tsunagu_session") == "s");
  CHECK(find_cookie(headers, "a") == "1");
  CHECK_FALSE(find_cookie(headers, "missing").has_value());
}

TEST_CASE("cookies: Set-Cookie carries the session attributes") {
  SetCookie cookie;
  cookie.name = "tsunagu_session";
  cookie.value = "abc";
  cookie.max_age_seconds = 1800;
  CHECK(format_set_cookie(cookie) == "tsunagu_session=abc; Path=/; Max-Age=1800; HttpOnly; Secure; SameSite=Strict");
  cookie.max_age_seconds = 0;
  cookie.value = "";
  CHECK(format_set_cookie(cookie) == "tsunagu_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
}

TEST_CASE("cookies: a value that could split the header is refused") {
  SetCookie cookie;
  cookie.name = "a";
  cookie.value = "x; Domain=evil.example";
  CHECK_FALSE(format_set_cookie(cookie).has_value());
  cookie.value = "x\r\nSet-Cookie: b=1";
  CHECK_FALSE(format_set_cookie(cookie).has_value());
  cookie.value = "ok";
  cookie.name = "bad name";
  CHECK_FALSE(format_set_cookie(cookie).has_value());
  cookie.name = "ok";
  cookie.path = "/; Domain=evil";
  CHECK_FALSE(format_set_cookie(cookie).has_value());
}
