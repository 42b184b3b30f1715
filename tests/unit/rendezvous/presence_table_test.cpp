#include <doctest/doctest.h>

#include <string>

#include "rendezvous/presence_table.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using tsunagu::proto::SocketAddress;

namespace {
constexpr uint64_t timeout_ms = 45'000;
const SocketAddress home = SocketAddress::v4({192, 168, 1, 20}, 5060);
const SocketAddress nat = SocketAddress::v4({198, 51, 100, 9}, 40000);
const SocketAddress other_nat = SocketAddress::v4({198, 51, 100, 77}, 40001);
}  // namespace

TEST_CASE("login makes a link the user's presence with a deadline one timeout away") {
  PresenceTable table(timeout_ms);
  CHECK_FALSE(table.next_deadline().has_value());
  CHECK_FALSE(table.login("alice", 1, {home}, nat, 1'000).has_value());
  CHECK(table.size() == 1);
  const PresenceRow* row = table.find("alice");
  REQUIRE(row != nullptr);
  CHECK(row->link == 1);
  CHECK(row->reported == std::vector<SocketAddress>{home});
  CHECK(row->observed == nat);
  CHECK_FALSE(row->in_call);
  CHECK(row->logged_in_ms == 1'000);
  CHECK(row->expires_ms == 1'000 + timeout_ms);
  CHECK(table.user_of(1) == "alice");
  CHECK(table.next_deadline() == 1'000 + timeout_ms);
  CHECK(table.find("bob") == nullptr);
}

TEST_CASE("keepalive pushes the deadline out and fails for a link without presence") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 1'000);
  CHECK(table.keepalive(1, 20'000));
  CHECK(table.find("alice")->last_seen_ms == 20'000);
  CHECK(table.find("alice")->expires_ms == 20'000 + timeout_ms);
  // The wake-up at the old deadline finds the row kept alive and moves it
  // (one sweep per timeout, not a tree operation per keepalive).
  CHECK(table.next_deadline() == 1'000 + timeout_ms);
  CHECK(table.keepalive(1, 30'000));
  CHECK(table.expire(1'000 + timeout_ms).empty());
  CHECK(table.find("alice") != nullptr);
  CHECK(table.next_deadline() == 30'000 + timeout_ms);
  CHECK(table.expire(30'000 + timeout_ms).size() == 1);
  CHECK_FALSE(table.keepalive(2, 20'000));
}

TEST_CASE("expire removes exactly the rows whose deadline has passed") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 1'000);
  table.login("bob", 2, {}, other_nat, 2'000);
  table.keepalive(1, 10'000);  // alice now expires at 55'000, bob at 47'000

  CHECK(table.expire(46'999).empty());
  auto gone = table.expire(47'000);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].user_id == "bob");
  CHECK(gone[0].link == 2);
  CHECK(table.find("bob") == nullptr);
  CHECK_FALSE(table.user_of(2).has_value());
  CHECK(table.next_deadline() == 55'000);

  gone = table.expire(1'000'000);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].user_id == "alice");
  CHECK(table.size() == 0);
  CHECK_FALSE(table.next_deadline().has_value());
}

TEST_CASE("two users with the same deadline both expire") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 0);
  table.login("bob", 2, {}, nat, 0);
  CHECK(table.expire(timeout_ms).size() == 2);
}

TEST_CASE("a second login of the same user displaces the first link") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {home}, nat, 1'000);
  auto displaced = table.login("alice", 2, {}, other_nat, 5'000);
  REQUIRE(displaced.has_value());
  CHECK(*displaced == 1);
  CHECK(table.size() == 1);
  CHECK(table.find("alice")->link == 2);
  CHECK(table.find("alice")->observed == other_nat);
  CHECK_FALSE(table.user_of(1).has_value());
  CHECK(table.user_of(2) == "alice");
  CHECK_FALSE(table.keepalive(1, 6'000));  // the old link no longer refreshes anything
  CHECK(table.next_deadline() == 5'000 + timeout_ms);
  // The displaced link going away does not end the new presence.
  CHECK_FALSE(table.remove_link(1).has_value());
  CHECK(table.find("alice") != nullptr);
}

TEST_CASE("logging in again on the same link replaces the addresses without displacing") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {home}, nat, 1'000);
  table.set_in_call("alice", true);
  CHECK_FALSE(table.login("alice", 1, {}, other_nat, 2'000).has_value());
  CHECK(table.size() == 1);
  CHECK(table.user_of(1) == "alice");
  const PresenceRow* row = table.find("alice");
  REQUIRE(row != nullptr);
  CHECK(row->reported.empty());
  CHECK(row->observed == other_nat);
  CHECK_FALSE(row->in_call);  // as a fresh row: the call table sets it again
  CHECK(row->logged_in_ms == 2'000);
  CHECK(row->last_seen_ms == 2'000);
  CHECK(row->expires_ms == 2'000 + timeout_ms);
  // Refreshed in place, as a keepalive does: the wake-up at the first
  // login's deadline finds the row alive and moves its entry.
  CHECK(table.next_deadline() == 1'000 + timeout_ms);
  CHECK(table.expire(1'000 + timeout_ms).empty());
  CHECK(table.next_deadline() == 2'000 + timeout_ms);
  auto gone = table.expire(2'000 + timeout_ms);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].user_id == "alice");
  CHECK(gone[0].link == 1);
  CHECK_FALSE(table.user_of(1).has_value());
  CHECK_FALSE(table.next_deadline().has_value());
}

TEST_CASE("a re-login in place, then another user on the link, then logout leave no row behind") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {home}, nat, 1'000);
  table.login("alice", 1, {home}, nat, 2'000);
  table.login("alice", 1, {}, nat, 3'000);
  CHECK_FALSE(table.login("bob", 1, {}, nat, 4'000).has_value());
  CHECK(table.find("alice") == nullptr);
  CHECK(table.user_of(1) == "bob");
  CHECK(table.logout("bob") == LinkId{1});
  CHECK(table.size() == 0);
  CHECK_FALSE(table.user_of(1).has_value());
  CHECK_FALSE(table.next_deadline().has_value());
}

TEST_CASE("a link that logs in as another user gives up the first user's presence") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 1'000);
  CHECK_FALSE(table.login("bob", 1, {}, nat, 2'000).has_value());
  CHECK(table.find("alice") == nullptr);
  CHECK(table.user_of(1) == "bob");
  CHECK(table.size() == 1);
  auto expired = table.expire(1'000'000);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].user_id == "bob");
}

TEST_CASE("remove_link ends the presence the link held and reports whose it was") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 1'000);
  table.login("bob", 2, {}, nat, 1'000);
  CHECK(table.remove_link(1) == "alice");
  CHECK(table.find("alice") == nullptr);
  CHECK(table.find("bob") != nullptr);
  CHECK_FALSE(table.remove_link(1).has_value());
  CHECK_FALSE(table.remove_link(99).has_value());
  auto expired = table.expire(1'000'000);
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].user_id == "bob");
}

TEST_CASE("logout ends the presence and returns the link that held it") {
  PresenceTable table(timeout_ms);
  table.login("alice", 7, {}, nat, 1'000);
  CHECK(table.logout("alice") == LinkId{7});
  CHECK(table.find("alice") == nullptr);
  CHECK_FALSE(table.user_of(7).has_value());
  CHECK_FALSE(table.logout("alice").has_value());
  CHECK_FALSE(table.next_deadline().has_value());
}

TEST_CASE("the in-call flag is kept on the row and refused for offline users") {
  PresenceTable table(timeout_ms);
  table.login("alice", 1, {}, nat, 1'000);
  CHECK(table.set_in_call("alice", true));
  CHECK(table.find("alice")->in_call);
  CHECK(table.set_in_call("alice", false));
  CHECK_FALSE(table.find("alice")->in_call);
  CHECK_FALSE(table.set_in_call("bob", true));
}
