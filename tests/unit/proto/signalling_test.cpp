#include "proto/signalling.hpp"

#include <doctest/doctest.h>

#include <string>

#include "proto/stun_message.hpp"

using namespace tsunagu::proto;

TEST_CASE("signalling: every method has a name") {
  CHECK(method_name(method_binding) == "binding");
  CHECK(method_name(method::register_user) == "register");
  CHECK(method_name(method::login) == "login");
  CHECK(method_name(method::keepalive) == "keepalive");
  CHECK(method_name(method::logout) == "logout");
  CHECK(method_name(method::lookup) == "lookup");
  CHECK(method_name(method::notice) == "notice");
  CHECK(method_name(0x8FF) == "unknown");
}

TEST_CASE("signalling: every error code has a human reason, unknown ones say Error") {
  CHECK(error_reason(error::bad_request) == "Bad Request");
  CHECK(error_reason(error::unauthenticated) == "Unauthenticated");
  CHECK(error_reason(error::forbidden) == "Forbidden");
  CHECK(error_reason(error::unknown_user) == "Unknown User");
  CHECK(error_reason(error::user_exists) == "User Exists");
  CHECK(error_reason(error::unsupported_version) == "Unsupported Version");
  CHECK(error_reason(error::invalid_user_id) == "Invalid User ID");
  CHECK(error_reason(error::too_many_attempts) == "Too Many Attempts");
  CHECK(error_reason(error::offline) == "Offline");
  CHECK(error_reason(error::server_error) == "Server Error");
  CHECK(error_reason(error::unavailable) == "Unavailable");
  CHECK(error_reason(599) == "Error");
  CHECK(error_reason(0) == "Error");
}

TEST_CASE("user ID: plain names, extensions at a domain and phone numbers are accepted") {
  for (const char* id : {"alice", "4106@acme", "+81-6-1234-0000", "a", "0", "bob.smith_2", "x@a.example-co",
                         "a+b", "7@acme.jp"}) {
    CAPTURE(id);
    CHECK(valid_user_id(id));
  }
}

TEST_CASE("user ID: malformed IDs are refused") {
  for (const char* id : {"", "Alice", "alicE", "ali ce", " alice", "alice ", "a@b@c", "@acme", "alice@",
                         ".alice", "-alice", "_alice", "alice@ACME", "alice@ac_me", "alice@ac+me", "al/ice",
                         "al\tice", "al\nice", "alice\x7f", "caf\xc3\xa9"}) {
    CAPTURE(id);
    CHECK_FALSE(valid_user_id(id));
  }
  CHECK_FALSE(valid_user_id(std::string("al\0ice", 6)));
}

TEST_CASE("user ID: the local part is at most 64 bytes and the domain at most 63") {
  const std::string local64(64, 'a');
  const std::string domain63(63, 'b');
  CHECK(valid_user_id(local64));
  CHECK_FALSE(valid_user_id(local64 + "a"));
  CHECK(valid_user_id(local64 + "@" + domain63));
  CHECK((local64 + "@" + domain63).size() == max_user_id_size);
  CHECK_FALSE(valid_user_id(local64 + "@" + domain63 + "b"));
  CHECK_FALSE(valid_user_id(std::string(200, 'a')));
}
