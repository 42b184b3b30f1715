#include "cluster/pg/pg_account_cache.hpp"

#include <doctest/doctest.h>

using tsunagu::cluster::PgAccountCache;
using tsunagu::rendezvous::Account;

namespace {

Account account(std::string id, std::string name = "") {
  Account a;
  a.user_id = std::move(id);
  a.display_name = std::move(name);
  return a;
}

}  // namespace

TEST_CASE("an account kept is found until its age runs out") {
  PgAccountCache cache(10, 1000);
  cache.observe_epoch(7);
  cache.store(account("alice", "Alice"), 100);
  auto kept = cache.find("alice", 1099);
  REQUIRE(kept.has_value());
  CHECK(kept->display_name == "Alice");
  CHECK_FALSE(cache.find("alice", 1100).has_value());
  CHECK_FALSE(cache.find("bob", 200).has_value());
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 2);
}

TEST_CASE("a moved epoch drops every account; the same epoch keeps them") {
  PgAccountCache cache(10, 60'000);
  cache.observe_epoch(7);
  cache.store(account("alice"), 0);
  cache.store(account("bob"), 0);
  cache.observe_epoch(7);
  CHECK(cache.size() == 2);
  cache.observe_epoch(8);  // a removal or password change somewhere in the cluster
  CHECK(cache.size() == 0);
  CHECK_FALSE(cache.find("alice", 1).has_value());
}

TEST_CASE("nothing is kept before an epoch was read, nor with capacity 0") {
  PgAccountCache before(10, 60'000);
  before.store(account("alice"), 0);
  CHECK(before.size() == 0);
  PgAccountCache off(0, 60'000);
  off.observe_epoch(1);
  off.store(account("alice"), 0);
  CHECK_FALSE(off.find("alice", 0).has_value());
}

TEST_CASE("when full the oldest account goes; a forgotten one is read again") {
  PgAccountCache cache(2, 60'000);
  cache.observe_epoch(1);
  cache.store(account("a"), 0);
  cache.store(account("b"), 0);
  cache.store(account("a", "again"), 0);  // stored again: its first slot is stale
  cache.store(account("c"), 0);
  CHECK(cache.size() == 2);
  CHECK_FALSE(cache.find("b", 1).has_value());
  REQUIRE(cache.find("a", 1).has_value());
  CHECK(cache.find("a", 1)->display_name == "again");
  CHECK(cache.find("c", 1).has_value());
  cache.forget("c");
  CHECK_FALSE(cache.find("c", 1).has_value());
  for (int i = 0; i < 100; ++i) cache.store(account("x" + std::to_string(i)), 0);
  CHECK(cache.size() == 2);
}
