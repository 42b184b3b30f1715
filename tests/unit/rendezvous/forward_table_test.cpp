#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>

#include "rendezvous/account_store.hpp"
#include "rendezvous/agent_registry.hpp"
#include "rendezvous/forward_table.hpp"
#include "../storage/temp_dir.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
namespace sig = tsunagu::proto;

using test::TempDir;

namespace {

// The agent registry in a real LMDB environment as the routes' storage, the
// way NodeCore reads it (one read transaction per question here).
struct RegistryRoutes final : EnrolledRoutes {
  TempDir dir;
  std::unique_ptr<AccountStore> store;
  std::optional<AgentRegistry> registry;
  size_t asked = 0;
  RegistryRoutes() {
    auto opened = AccountStore::open(dir.path, uint64_t{8} << 20);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    auto reg = AgentRegistry::open(store->environment());
    REQUIRE(reg.has_value());
    registry.emplace(std::move(*reg));
  }
  void enroll(const std::string& name, std::vector<std::string> domains, std::vector<std::string> prefixes) {
    auto txn = store->begin_write();
    REQUIRE(txn.has_value());
    auto conflict = registry->enroll(*txn, AgentEnrollment{name, std::move(domains), std::move(prefixes), 1});
    REQUIRE(conflict.has_value());
    REQUIRE_FALSE(conflict->has_value());
    REQUIRE(txn->commit().has_value());
  }
  Expected<std::optional<std::string>, storage::StoreError> route_of(const std::string& user_id) override {
    ++asked;
    auto txn = store->begin_read();
    if (!txn) return Unexpected(txn.error());
    return registry->route_of(*txn, user_id);
  }
};

// Storage that fails every question (a broken read): routes count as not enrolled.
struct FailingRoutes final : EnrolledRoutes {
  Expected<std::optional<std::string>, storage::StoreError> route_of(const std::string&) override {
    return Unexpected(storage::StoreError{storage::StoreErrc::corrupted, 0, "test"});
  }
};

proto::TransactionId transaction(uint8_t seed) {
  proto::TransactionId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = std::byte(static_cast<uint8_t>(seed * 16 + i));
  return id;
}

PendingForward waiting_on(LinkId agent, LinkId caller, uint16_t method = sig::method::lookup) {
  PendingForward forward;
  forward.agent = agent;
  forward.caller = caller;
  forward.caller_transaction = transaction(static_cast<uint8_t>(caller));
  forward.method = method;
  return forward;
}

}  // namespace

TEST_CASE("route table: held domains and prefixes, the longest prefix wins, an agent's close drops its routes") {
  LocalRouteTable table;
  table.hold({"acme", "example"}, {"+8150"}, 10);
  table.hold({}, {"+81", "+815012"}, 11);
  CHECK(table.domain_holder("acme") == LinkId{10});
  CHECK_FALSE(table.domain_holder("other").has_value());
  CHECK(table.prefix_holder("+81") == LinkId{11});
  auto holder = table.number_holder("+81501234");
  REQUIRE(holder.has_value());
  CHECK(holder->first == "+815012");
  CHECK(holder->second == 11);
  CHECK(table.number_holder("+8150999")->first == "+8150");
  CHECK(table.number_holder("+8199")->first == "+81");
  CHECK_FALSE(table.number_holder("+44").has_value());
  table.drop_agent(11);
  CHECK(table.number_holder("+81501234")->first == "+8150");
  CHECK_FALSE(table.prefix_holder("+81").has_value());
  CHECK(table.domain_holder("example") == LinkId{10});
}

TEST_CASE("find_route: a connected agent first, then the enrolments in storage; others are not routed") {
  LocalRouteTable held;
  RegistryRoutes enrolled;
  enrolled.enroll("pbx-acme", {"acme"}, {"+8150"});

  // Enrolled, agent away: routed, no agent.
  Route away = find_route(held, &enrolled, "4106@acme");
  CHECK(away.routed);
  CHECK_FALSE(away.agent.has_value());
  CHECK(away.route == "acme");
  CHECK(find_route(held, &enrolled, "+815055").route == "+8150");

  // Connected: the agent, without asking storage.
  held.hold({"acme"}, {"+8150"}, 42);
  size_t asked = enrolled.asked;
  Route here = find_route(held, &enrolled, "4106@acme");
  CHECK(here.routed);
  CHECK(here.agent == LinkId{42});
  CHECK(find_route(held, &enrolled, "+815055").agent == LinkId{42});
  CHECK(enrolled.asked == asked);

  // Accounts and IDs of other domains are not routed.
  CHECK_FALSE(find_route(held, &enrolled, "alice").routed);
  CHECK_FALSE(find_route(held, &enrolled, "4106@other").routed);
  CHECK_FALSE(find_route(held, &enrolled, "+4420").routed);
  // No storage, or failing storage: only connected agents route.
  CHECK_FALSE(find_route(LocalRouteTable{}, nullptr, "4106@acme").routed);
  FailingRoutes failing;
  Route failed = find_route(LocalRouteTable{}, &failing, "4106@acme");
  CHECK_FALSE(failed.routed);
  CHECK(failed.storage_error.has_value());  // callers answer 503, never "no such user"
  CHECK_FALSE(find_route(LocalRouteTable{}, nullptr, "4106@acme").storage_error.has_value());
  Route held_anyway = find_route(held, &failing, "4106@acme");
  CHECK(held_anyway.agent == LinkId{42});
  CHECK_FALSE(held_anyway.storage_error.has_value());  // a connected agent needs no storage
}

TEST_CASE("forward table: add, find, take once; counted per agent") {
  LocalForwardTable table;
  table.add(transaction(1), waiting_on(10, 1));
  table.add(transaction(2), waiting_on(10, 2, sig::method::voicemail_begin));
  table.add(transaction(3), waiting_on(11, 3));
  CHECK(table.size() == 3);
  CHECK(table.pending_for(10) == 2);
  CHECK(table.pending_for(11) == 1);
  CHECK(table.pending_for(12) == 0);
  const PendingForward* found = table.find(transaction(2));
  REQUIRE(found != nullptr);
  CHECK(found->method == sig::method::voicemail_begin);
  CHECK(found->caller == 2);
  auto taken = table.take(transaction(2));
  REQUIRE(taken.has_value());
  CHECK(taken->caller_transaction == transaction(2));
  CHECK_FALSE(table.take(transaction(2)).has_value());  // a late answer finds nothing
  CHECK(table.find(transaction(2)) == nullptr);
  CHECK(table.pending_for(10) == 1);
}

TEST_CASE("forward table: an agent's forwards are taken together in transaction order; others stay") {
  LocalForwardTable table;
  table.add(transaction(5), waiting_on(10, 5));
  table.add(transaction(1), waiting_on(10, 1));
  table.add(transaction(3), waiting_on(11, 3));
  auto taken = table.take_agent(10);
  REQUIRE(taken.size() == 2);
  CHECK(taken[0].first == transaction(1));
  CHECK(taken[1].first == transaction(5));
  CHECK(taken[1].second.caller == 5);
  CHECK(table.pending_for(10) == 0);
  CHECK(table.size() == 1);
  CHECK(table.pending_for(11) == 1);
  CHECK(table.take_agent(10).empty());
}

TEST_CASE("forward table: a reused transaction ID replaces its forward and moves the count") {
  LocalForwardTable table;
  table.add(transaction(1), waiting_on(10, 1));
  table.add(transaction(1), waiting_on(11, 2));
  CHECK(table.size() == 1);
  CHECK(table.pending_for(10) == 0);
  CHECK(table.pending_for(11) == 1);
  CHECK(table.find(transaction(1))->caller == 2);
}
