// RelayNameCache (rendezvous/relay_names.*): which card relay names to look
// up and when again, what is handed out, a failure reported once. The clock
// is given; no lookups are made here (the daemon's uv_getaddrinfo does them).
#include "rendezvous/relay_names.hpp"

#include <doctest/doctest.h>

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using proto::SocketAddress;

namespace {
const SocketAddress v4 = SocketAddress::v4({127, 0, 0, 1}, 0);
const SocketAddress v6 = SocketAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0);
}  // namespace

TEST_CASE("relay names: looked up once while in flight, handed out IPv4 first with the relay's port, again after the TTL") {
  RelayNameCache cache(RelayNameCache::Timing{300, 60});
  CHECK(cache.want({"relay.test", "relay.test"}, 0) == std::vector<std::string>{"relay.test"});
  CHECK(cache.in_flight("relay.test"));
  CHECK(cache.want({"relay.test"}, 10).empty());  // one lookup at a time per name
  CHECK_FALSE(cache.address("relay.test", 3478).has_value());
  cache.resolved("relay.test", {v6, v4}, 100);
  CHECK_FALSE(cache.in_flight("relay.test"));
  CHECK(cache.address("relay.test", 3478) == SocketAddress::v4({127, 0, 0, 1}, 3478));
  CHECK(cache.want({"relay.test"}, 100 + 299'999).empty());
  CHECK(cache.want({"relay.test"}, 100 + 300'000) == std::vector<std::string>{"relay.test"});
  // Past its TTL and being looked up again, the old answer still serves.
  CHECK(cache.address("relay.test", 3478) == SocketAddress::v4({127, 0, 0, 1}, 3478));
  cache.resolved("relay.test", {v6}, 400'000);
  CHECK(cache.address("relay.test", 5) == SocketAddress::v6(v6.ip, 5));
}

TEST_CASE("relay names: a failure drops the addresses, is reported once, and is retried after the failure TTL") {
  RelayNameCache cache(RelayNameCache::Timing{300, 60});
  cache.want({"relay.test"}, 0);
  cache.resolved("relay.test", {v4}, 0);
  cache.want({"relay.test"}, 300'000);
  CHECK(cache.failed("relay.test", 300'000));  // the first failure: logged
  CHECK_FALSE(cache.address("relay.test", 3478).has_value());
  CHECK(cache.want({"relay.test"}, 359'999).empty());
  CHECK(cache.want({"relay.test"}, 360'000) == std::vector<std::string>{"relay.test"});
  CHECK_FALSE(cache.failed("relay.test", 360'000));  // failing again: not logged again
  cache.want({"relay.test"}, 420'000);
  cache.resolved("relay.test", {}, 420'000);  // an answer with no address is a failure too
  CHECK_FALSE(cache.address("relay.test", 3478).has_value());
  cache.want({"relay.test"}, 480'000);
  cache.resolved("relay.test", {v4}, 480'000);
  CHECK(cache.address("relay.test", 3478).has_value());
  cache.want({"relay.test"}, 780'000);
  CHECK(cache.failed("relay.test", 780'000));  // after a success, a new failure is logged again
  // An answer for a name never asked about (or displaced) is dropped.
  cache.resolved("other.test", {v4}, 0);
  CHECK_FALSE(cache.address("other.test", 1).has_value());
}

TEST_CASE("relay names: at most max_names are kept; a new one displaces the one answered longest ago") {
  RelayNameCache cache;
  for (size_t i = 0; i < RelayNameCache::max_names; ++i) {
    std::string name = "r" + std::to_string(i) + ".test";
    cache.want({name}, i);
    cache.resolved(name, {v4}, 1000 + i);
  }
  CHECK(cache.size() == RelayNameCache::max_names);
  CHECK(cache.want({"new.test"}, 5000) == std::vector<std::string>{"new.test"});
  CHECK(cache.size() == RelayNameCache::max_names);
  CHECK_FALSE(cache.address("r0.test", 1).has_value());
  CHECK(cache.address("r1.test", 1).has_value());
}
