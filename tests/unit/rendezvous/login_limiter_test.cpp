#include <doctest/doctest.h>

#include <string>

#include "rendezvous/login_limiter.hpp"

using namespace tsunagu::rendezvous;

TEST_CASE("failures up to the burst pass and the next attempt must wait one refill") {
  LoginLimiter limiter(LoginLimiter::Policy{});
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(limiter.retry_after("alice", "198.51.100.9", t) == 0);
    limiter.record_failure("alice", "198.51.100.9", t);
  }
  CHECK(limiter.retry_after("alice", "198.51.100.9", t) == 60);
  // The limit is on the (user ID, source) pair: the owner elsewhere gets in.
  CHECK(limiter.retry_after("alice", "203.0.113.5", t) == 0);
  // Another user from the same source is not affected yet.
  CHECK(limiter.retry_after("bob", "198.51.100.9", t) == 0);
}

TEST_CASE("time refills a drained bucket one attempt per refill period") {
  LoginLimiter limiter(LoginLimiter::Policy{});
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 5; ++i) limiter.record_failure("alice", "198.51.100.9", t);
  CHECK(limiter.retry_after("alice", "198.51.100.9", t + 30'000) == 30);
  CHECK(limiter.retry_after("alice", "198.51.100.9", t + 59'500) == 1);  // never rounds down to 0
  CHECK(limiter.retry_after("alice", "198.51.100.9", t + 60'000) == 0);
  limiter.record_failure("alice", "198.51.100.9", t + 60'000);
  CHECK(limiter.retry_after("alice", "198.51.100.9", t + 60'000) == 60);
  // A long quiet spell refills the whole burst, not more.
  const uint64_t later = t + 60'000 + 3'600'000;
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK(limiter.retry_after("alice", "198.51.100.9", later) == 0);
    limiter.record_failure("alice", "198.51.100.9", later);
  }
  CHECK(limiter.retry_after("alice", "198.51.100.9", later) > 0);
}

TEST_CASE("a successful login forgets the pair's failures but not the source's") {
  LoginLimiter::Policy policy;
  policy.per_source_burst = 6;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 5; ++i) limiter.record_failure("alice", "198.51.100.9", t);
  REQUIRE(limiter.retry_after("alice", "198.51.100.9", t) > 0);
  limiter.record_success("alice", "198.51.100.9");
  CHECK(limiter.retry_after("alice", "198.51.100.9", t) == 0);
  // The source spent 5 of 6 and got one back; two more failures and it must wait.
  CHECK(limiter.retry_after("carol", "198.51.100.9", t) == 0);
  limiter.record_failure("carol", "198.51.100.9", t);
  limiter.record_failure("carol", "198.51.100.9", t);
  CHECK(limiter.retry_after("dave", "198.51.100.9", t) == 6);  // one source refill: 6 s
}

TEST_CASE("one source guessing across many IDs is limited per source") {
  LoginLimiter limiter(LoginLimiter::Policy{});
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 20; ++i) {
    std::string id = "user" + std::to_string(i);
    CAPTURE(id);
    CHECK(limiter.retry_after(id, "198.51.100.9", t) == 0);
    limiter.record_failure(id, "198.51.100.9", t);
  }
  CHECK(limiter.retry_after("user999", "198.51.100.9", t) == 6);
  CHECK(limiter.retry_after("user999", "203.0.113.5", t) == 0);
  CHECK(limiter.retry_after("user999", "198.51.100.9", t + 6'000) == 0);
}

TEST_CASE("a spray of single failures under many IDs keeps memory bounded") {
  LoginLimiter::Policy policy;
  policy.max_tracked = 1'000;
  LoginLimiter limiter(policy);
  for (int i = 0; i < 50'000; ++i) {
    std::string n = std::to_string(i);
    limiter.record_failure("spray" + n, "10." + std::to_string(i % 250) + ".0." + std::to_string(i / 250 % 250),
                           1'000'000);
    REQUIRE(limiter.tracked() <= 3 * policy.max_tracked);  // pairs, users, sources
  }
}

TEST_CASE("a spray of IDs each failed a few times keeps memory bounded") {
  // Three failures leave a user bucket below half full, so it carries
  // information; the table must still not grow past max_tracked.
  LoginLimiter::Policy policy;
  policy.max_tracked = 1'000;
  LoginLimiter limiter(policy);
  for (int i = 0; i < 20'000; ++i) {
    std::string id = "spray" + std::to_string(i);
    std::string source = "2001:db8::" + std::to_string(i);
    for (int k = 0; k < 3; ++k) limiter.record_failure(id, source, 1'000'000);
    REQUIRE(limiter.tracked() <= 3 * policy.max_tracked);  // pairs, users, sources
  }
}

TEST_CASE("the limit still holds for the IDs that are attacked hardest after pruning") {
  LoginLimiter::Policy policy;
  policy.max_tracked = 100;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 5; ++i) limiter.record_failure("alice", "198.51.100.9", t);
  // A spray of single failures from elsewhere forces pruning.
  for (int i = 0; i < 1'000; ++i) limiter.record_failure("spray" + std::to_string(i), "203.0.113.5", t);
  CHECK(limiter.retry_after("alice", "198.51.100.9", t) > 0);
}

TEST_CASE("an ID under attack stays limited once the table is full of drained buckets") {
  // Regression: pruning ran on every failure, even of a tracked ID, and forgot
  // the bucket being drained; with a full table a victim never got limited.
  LoginLimiter::Policy policy;
  policy.max_tracked = 100;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 100; ++i) {
    std::string id = "filler" + std::to_string(i);
    for (int k = 0; k < 3; ++k) limiter.record_failure(id, "2001:db8::" + std::to_string(i), t);
  }
  for (int k = 0; k < 5; ++k) {
    CAPTURE(k);
    REQUIRE(limiter.retry_after("alice", "2001:db8:1::1", t) == 0);
    limiter.record_failure("alice", "2001:db8:1::1", t);
  }
  CHECK(limiter.retry_after("alice", "2001:db8:1::1", t) == 60);
  CHECK(limiter.tracked() <= 3 * policy.max_tracked);  // pairs, users, sources
}

TEST_CASE("source keys: IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as IPv4") {
  using tsunagu::proto::SocketAddress;
  CHECK(source_key(SocketAddress::v4({198, 51, 100, 9}, 40000)) == "198.51.100.9");
  auto a = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}, 5000);
  auto b = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0x12, 0x34, 0, 0, 0, 0, 0, 0x99}, 6000);
  auto other = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}, 5000);
  CHECK(source_key(a) == "2001:db8:1:2::/64");
  CHECK(source_key(a) == source_key(b));
  CHECK(source_key(a) != source_key(other));
  auto mapped = SocketAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7}, 1);
  CHECK(source_key(mapped) == "203.0.113.7");
}

TEST_CASE("one IPv6 /64 trying fresh addresses is limited as one source") {
  LoginLimiter::Policy policy;
  policy.per_source_burst = 3;
  LoginLimiter limiter(policy);
  using tsunagu::proto::SocketAddress;
  for (uint8_t host = 1; host <= 3; ++host) {
    auto address = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, host}, 5000);
    REQUIRE(limiter.retry_after("user" + std::to_string(host), source_key(address), 0) == 0);
    limiter.record_failure("user" + std::to_string(host), source_key(address), 0);
  }
  auto fresh = SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xaa, 0, 0, 0, 0, 0, 0, 0x77}, 5000);
  CHECK(limiter.retry_after("user9", source_key(fresh), 0) > 0);
}

// Issue 11 §5: five wrong passwords from anywhere used to block even the
// right password for a minute.
TEST_CASE("a wrong-password flood from other sources does not lock out the owner") {
  LoginLimiter limiter(LoginLimiter::Policy{});
  const uint64_t t = 1'000'000;
  for (int source = 0; source < 40; ++source)
    for (int k = 0; k < 5; ++k) limiter.record_failure("alice", "10.0.0." + std::to_string(source), t);
  CHECK(limiter.retry_after("alice", "10.0.0.1", t) == 60);  // each flooding source is held back
  CHECK(limiter.retry_after("alice", "198.51.100.9", t) == 0);  // the owner, with no failures, gets in
}

TEST_CASE("the per-user limit holds back a distributed guesser's sources once they failed") {
  LoginLimiter::Policy policy;
  policy.per_user_burst = 10;
  policy.per_user_refill_ms = 36'000;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int source = 0; source < 10; ++source) limiter.record_failure("alice", "10.0.1." + std::to_string(source), t);
  // Each source failed once (its pair and source buckets are nearly full),
  // but the ID's own bucket is empty: those sources wait for it.
  CHECK(limiter.retry_after("alice", "10.0.1.3", t) == 36);
  CHECK(limiter.retry_after("alice", "10.0.1.77", t) == 0);  // a source with no failures is let in
  CHECK(limiter.retry_after("bob", "10.0.1.3", t) == 0);     // and other IDs are not affected
}

TEST_CASE("a successful login does not refill the ID's bucket for a distributed guesser") {
  LoginLimiter::Policy policy;
  policy.per_user_burst = 5;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int source = 0; source < 5; ++source) limiter.record_failure("alice", "10.0.2." + std::to_string(source), t);
  REQUIRE(limiter.retry_after("alice", "10.0.2.0", t) > 0);
  limiter.record_failure("alice", "198.51.100.9", t);  // the owner's own attempt, charged up front ...
  limiter.record_success("alice", "198.51.100.9");    // ... and refunded: one attempt back, no more
  REQUIRE(limiter.retry_after("alice", "10.0.2.0", t) == 0);
  limiter.record_failure("alice", "10.0.2.0", t);
  CHECK(limiter.retry_after("alice", "10.0.2.1", t) > 0);
}

TEST_CASE("registrations are limited per source and refill with time") {
  LoginLimiter::Policy policy;
  policy.register_burst = 3;
  policy.register_refill_ms = 60'000;
  LoginLimiter limiter(policy);
  const uint64_t t = 1'000'000;
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    REQUIRE(limiter.register_retry_after("198.51.100.9", t) == 0);
    limiter.record_registration("198.51.100.9", t);
  }
  CHECK(limiter.register_retry_after("198.51.100.9", t) == 60);
  CHECK(limiter.register_retry_after("203.0.113.5", t) == 0);
  CHECK(limiter.register_retry_after("198.51.100.9", t + 60'000) == 0);
}
