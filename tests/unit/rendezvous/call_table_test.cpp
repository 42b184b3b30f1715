#include <doctest/doctest.h>

#include <algorithm>

#include "proto/signalling.hpp"
#include "rendezvous/call_table.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
namespace sig = tsunagu::proto;

namespace {
Call prepared(const std::string& id, const std::string& caller, const std::string& callee, LinkId link,
              const std::string& source = "198.51.100.9") {
  Call call;
  call.id = id;
  call.caller = caller;
  call.callee = callee;
  call.caller_link = link;
  call.caller_source = source;
  call.state = sig::call_state::preparing;
  return call;
}

proto::TransactionId transaction(uint8_t seed) {
  proto::TransactionId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = std::byte(static_cast<uint8_t>(seed + i));
  return id;
}
}  // namespace

TEST_CASE("call table: a prepared call counts for its caller and source only; ringing counts the callee") {
  LocalCallTable table;
  Call& call = table.insert(prepared("c1", "alice", "bob", 1));
  CHECK(table.size() == 1);
  CHECK(table.counts("alice") == CallCounts{1, 0, 0});
  CHECK(table.counts("bob") == CallCounts{});
  CHECK(table.ringing_from("198.51.100.9") == 1);
  CHECK(table.calls_on(1) == std::vector<std::string>{"c1"});
  CHECK_FALSE(table.has_calls_on(2));

  table.ring(call, 2, false, transaction(7));
  CHECK(call.state == sig::call_state::ringing);
  CHECK(call.callee_link == 2);
  CHECK(table.counts("alice") == CallCounts{1, 0, 0});
  CHECK(table.counts("bob") == CallCounts{0, 1, 0});
  CHECK(table.ringing_from("198.51.100.9") == 1);
  CHECK(table.has_calls_on(2));
  CHECK(table.find_ring(transaction(7)) == &call);
  CHECK(table.find_ring(transaction(8)) == nullptr);
}

TEST_CASE("call table: accepted calls count both parties; the ringing counts go") {
  LocalCallTable table;
  Call& call = table.insert(prepared("c1", "alice", "bob", 1));
  table.ring(call, 2, false, transaction(1));
  table.forget_ring(transaction(1));
  CHECK(table.find_ring(transaction(1)) == nullptr);
  table.accept(call);
  CHECK(call.state == sig::call_state::accepted);
  CHECK(table.counts("alice") == CallCounts{0, 0, 1});
  CHECK(table.counts("bob") == CallCounts{0, 0, 1});
  CHECK(table.ringing_from("198.51.100.9") == 0);
  CHECK(table.counted_sources() == 0);
}

TEST_CASE("call table: erase returns the call and leaves no counts, links or rings behind") {
  LocalCallTable table;
  Call& ringing = table.insert(prepared("c1", "alice", "bob", 1));
  table.ring(ringing, 2, true, transaction(1));
  Call& other = table.insert(prepared("c2", "carol", "bob", 3, "203.0.113.5"));
  table.ring(other, 2, false, transaction(2));
  CHECK(table.counts("bob").ringing_in == 2);
  auto on_bob = table.calls_on(2);
  std::sort(on_bob.begin(), on_bob.end());
  CHECK(on_bob == std::vector<std::string>{"c1", "c2"});

  auto ended = table.erase("c1");
  REQUIRE(ended.has_value());
  CHECK(ended->id == "c1");
  CHECK(ended->via_agent);
  CHECK_FALSE(table.erase("c1").has_value());
  CHECK(table.find("c1") == nullptr);
  CHECK(table.find_ring(transaction(1)) == nullptr);
  CHECK(table.find_ring(transaction(2)) != nullptr);
  CHECK(table.calls_on(2) == std::vector<std::string>{"c2"});
  CHECK_FALSE(table.has_calls_on(1));
  CHECK(table.counts("alice") == CallCounts{});
  CHECK(table.counts("bob").ringing_in == 1);

  table.erase("c2");
  CHECK(table.size() == 0);
  CHECK(table.counted_users() == 0);
  CHECK(table.counted_sources() == 0);
  CHECK_FALSE(table.has_calls_on(2));
  CHECK_FALSE(table.has_calls_on(3));
}

TEST_CASE("call table: counts by source add up over users, and a prepared call that never rang erases cleanly") {
  LocalCallTable table;
  table.insert(prepared("c1", "alice", "bob", 1));
  table.insert(prepared("c2", "dave", "bob", 4));  // same source address
  table.insert(prepared("c3", "erin", "bob", 5, "203.0.113.5"));
  CHECK(table.ringing_from("198.51.100.9") == 2);
  CHECK(table.ringing_from("203.0.113.5") == 1);
  CHECK(table.erase("c2").has_value());
  CHECK(table.ringing_from("198.51.100.9") == 1);
  CHECK(table.counts("dave") == CallCounts{});
  // A call inserted already ringing (both links known) is found by its ring.
  Call direct = prepared("c4", "frank", "grace", 6);
  direct.state = sig::call_state::ringing;
  direct.callee_link = 7;
  direct.ring_transaction = transaction(9);
  table.insert(direct);
  CHECK(table.find_ring(transaction(9)) == table.find("c4"));
  CHECK(table.counts("grace") == CallCounts{0, 1, 0});
  CHECK(table.has_calls_on(7));
}
