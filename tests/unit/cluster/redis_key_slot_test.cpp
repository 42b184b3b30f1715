#include <doctest/doctest.h>

#include "cluster/redis/key_slot.hpp"

using namespace tsunagu::cluster;

TEST_CASE("CRC16 is XMODEM's: the check value of \"123456789\" is 0x31C3") {
  CHECK(redis_crc16("123456789") == 0x31C3);
  CHECK(redis_crc16("") == 0);
}

TEST_CASE("key slots match Redis' own (CLUSTER KEYSLOT)") {
  CHECK(redis_key_slot("foo") == 12182);
  CHECK(redis_key_slot("bar") == 5061);
  CHECK(redis_key_slot("hello") == 866);
  CHECK(redis_key_slot("") == 0);
}

TEST_CASE("a hash tag hashes only the text between the first braces") {
  CHECK(redis_key_slot("{user1000}.following") == redis_key_slot("{user1000}.followers"));
  CHECK(redis_key_slot("{user1000}.following") == redis_key_slot("user1000"));
  CHECK(redis_key_slot("presence:{alice@acme}") == redis_key_slot("node:{alice@acme}"));
  // "{}" is not a tag: the whole key counts; only the first '{' opens a tag.
  CHECK(redis_key_slot("foo{}{bar}") == redis_key_slot("foo{}{bar}"));
  CHECK(redis_key_slot("foo{}{bar}") != redis_key_slot("bar"));
  CHECK(redis_key_slot("foo{{bar}}zap") == redis_key_slot("{bar"));
  CHECK(redis_key_slot("foo{bar}{zap}") == redis_key_slot("bar"));
  CHECK(redis_key_slot("{unclosed") == redis_key_slot("{unclosed"));
  CHECK(redis_key_slot("{unclosed") != redis_key_slot("unclosed"));
}

TEST_CASE("MOVED and ASK replies parse; anything else does not") {
  auto moved = parse_redis_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(moved.has_value());
  CHECK_FALSE(moved->ask);
  CHECK(moved->slot == 3999);
  CHECK(moved->host == "127.0.0.1");
  CHECK(moved->port == 6381);
  auto ask = parse_redis_redirect("ASK 12182 ::1:7002");
  REQUIRE(ask.has_value());
  CHECK(ask->ask);
  CHECK(ask->host == "::1");
  CHECK(ask->port == 7002);
  CHECK_FALSE(parse_redis_redirect("ERR unknown command"));
  CHECK_FALSE(parse_redis_redirect("MOVED 16384 127.0.0.1:6381"));
  CHECK_FALSE(parse_redis_redirect("MOVED 1 127.0.0.1:0"));
  CHECK_FALSE(parse_redis_redirect("MOVED 1 127.0.0.1"));
  CHECK_FALSE(parse_redis_redirect("MOVED x 127.0.0.1:7000"));
  CHECK_FALSE(parse_redis_redirect("MOVED 1 :7000"));
}
