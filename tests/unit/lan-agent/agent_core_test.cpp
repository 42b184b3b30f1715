// Forwarded lookups answered from a real (temporary) allocation table.
#include "lan-agent/agent_core.hpp"

#include <doctest/doctest.h>

#include "proto/signalling.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempTable;

namespace {

constexpr int64_t T = 1795334000;

Bytes lookup_request(std::string_view user, std::string_view caller, proto::TransactionId id = {}) {
  id.bytes[0] = std::byte{0x42};
  proto::MessageBuilder b(proto::MessageClass::request, proto::method::forwarded_lookup, id);
  b.add_u32(proto::attr::protocol_version, proto::protocol_version);
  if (!user.empty()) b.add_string(proto::attr::user_id, user);
  if (!caller.empty()) b.add_string(proto::attr::caller_id, caller);
  return b.finish();
}

struct Answered {
  Bytes bytes;
  proto::Message message;
};

Answered ask(AgentCore& core, std::string_view user, std::string_view caller, int64_t now = T) {
  Bytes request = lookup_request(user, caller);
  auto decoded = proto::decode(request);
  REQUIRE(decoded.has_value());
  Answered a;
  a.bytes = core.respond(decoded->message, now);
  auto response = proto::decode(a.bytes);
  REQUIRE(response.has_value());
  a.message = response->message;
  CHECK(a.message.transaction_id == decoded->message.transaction_id);
  CHECK(a.message.method == proto::method::forwarded_lookup);
  const auto* version = a.message.find(proto::attr::protocol_version);
  REQUIRE(version != nullptr);
  CHECK(*proto::read_u32(*version) == proto::protocol_version);
  return a;
}

uint16_t error_of(const proto::Message& m) {
  REQUIRE(m.message_class == proto::MessageClass::error);
  const auto* code = m.find(proto::attr::error_code);
  REQUIRE(code != nullptr);
  return proto::read_error_code(*code)->code;
}

EdgePolicyConfig showing_addresses() {
  EdgePolicyConfig config;
  config.show_lease_addresses = true;
  return config;
}

struct Fixture {
  TempTable t;
  AgentCore core;
  explicit Fixture(EdgePolicyConfig policy = showing_addresses())
      : core(*t.table, AgentIdentity{"acme", {"acme"}, {"+81-6-1234-"}}, EdgePolicy(std::move(policy))) {
    REQUIRE(t.table->bind("4106", *alloc::ClientRef::mac("02:0a:0b:0c:0d:0e"), T).has_value());
    REQUIRE(t.table->apply(grant("02:0a:0b:0c:0d:0e", "10.99.0.68", T + 120, T), T).has_value());
  }
};

}  // namespace

TEST_CASE("lookup: IDs map to extensions by domain and by number prefix") {
  TempTable t;
  AgentCore core(*t.table, AgentIdentity{"acme", {"acme", "acme.example"}, {"+81-6-1234-", "+81612"}}, EdgePolicy());
  CHECK(core.extension_for("4106@acme") == "4106");
  CHECK(core.extension_for("alice@acme.example") == "alice");
  CHECK_FALSE(core.extension_for("4106@other").has_value());
  CHECK_FALSE(core.extension_for("4106").has_value());
  CHECK(core.extension_for("+81-6-1234-0000") == "0000");
  CHECK(core.extension_for("+8161234-0000") == "0000");  // separators ignored on both sides
  CHECK(core.extension_for("+81-6-12-99") == "99");       // the shorter prefix +81612
  CHECK_FALSE(core.extension_for("+81-6-1234-").has_value());  // nothing after the prefix
  CHECK_FALSE(core.extension_for("+81-6-1234-00a0").has_value());
  CHECK_FALSE(core.extension_for("+44-20-1234").has_value());
  CHECK_FALSE(core.extension_for("+81-6-1234-" + std::string(33, '1')).has_value());
}

TEST_CASE("lookup: a bound extension with a live lease answers its address") {
  Fixture f;
  auto a = ask(f.core, "4106@acme", "alice");
  REQUIRE(a.message.message_class == proto::MessageClass::success);
  CHECK(proto::read_string(*a.message.find(proto::attr::user_id)) == "4106@acme");
  auto addresses = a.message.find_all(proto::attr::lease_address);
  REQUIRE(addresses.size() == 1);
  auto address = proto::read_xor_address(*addresses[0], a.message);
  REQUIRE(address.has_value());
  CHECK(address->ip_string() == "10.99.0.68");
  CHECK(address->port == 0);
  CHECK(*proto::read_u64(*a.message.find(proto::attr::lease_expires)) == uint64_t(T + 120));
  CHECK(proto::read_string(*a.message.find(proto::attr::agent_name)) == "acme");
}

// Issue 11 §6: LAN addresses stay inside the LAN unless the edge policy says otherwise.
TEST_CASE("lookup: the answer carries no LAN address unless policy.show_lease_addresses is on") {
  Fixture f{EdgePolicyConfig{}};
  auto a = ask(f.core, "4106@acme", "alice");
  REQUIRE(a.message.message_class == proto::MessageClass::success);
  CHECK(a.message.find(proto::attr::lease_address) == nullptr);
  CHECK(*proto::read_u64(*a.message.find(proto::attr::lease_expires)) == uint64_t(T + 120));  // still live
  CHECK(proto::read_string(*a.message.find(proto::attr::agent_name)) == "acme");
}

TEST_CASE("lookup: v4 and v6 leases are both answered, with the latest expiry") {
  Fixture f;
  auto v6 = grant("02:0a:0b:0c:0d:0e", "fd99::200", T + 600, T);
  v6.client_id = "00:01:00:01:aa:bb";
  REQUIRE(f.t.table->apply(v6, T).has_value());
  auto a = ask(f.core, "4106@acme", "alice");
  REQUIRE(a.message.message_class == proto::MessageClass::success);
  CHECK(a.message.find_all(proto::attr::lease_address).size() == 2);
  CHECK(*proto::read_u64(*a.message.find(proto::attr::lease_expires)) == uint64_t(T + 600));
}

TEST_CASE("lookup: a phone number under our prefix finds the extension") {
  TempTable t;
  AgentCore core(*t.table, AgentIdentity{"acme", {"acme"}, {"+81-6-1234-"}}, EdgePolicy());
  REQUIRE(t.table->bind("0000", *alloc::ClientRef::mac("02:00:00:00:00:01"), T).has_value());
  REQUIRE(t.table->apply(grant("02:00:00:00:00:01", "10.99.0.90", 0x7fffffffffffffff, T), T).has_value());
  auto a = ask(core, "+81-6-1234-0000", "bob@other");
  REQUIRE(a.message.message_class == proto::MessageClass::success);
  CHECK(*proto::read_u64(*a.message.find(proto::attr::lease_expires)) == 0);  // infinite
}

TEST_CASE("lookup: an unbound extension is 404") {
  Fixture f;
  CHECK(error_of(ask(f.core, "4999@acme", "alice").message) == 404);
  CHECK(error_of(ask(f.core, "4106@elsewhere", "alice").message) == 404);
}

TEST_CASE("lookup: a bound extension without a live lease is 481") {
  Fixture f;
  CHECK(error_of(ask(f.core, "4106@acme", "alice", T + 121).message) == 481);
  REQUIRE(f.t.table->bind("4107", *alloc::ClientRef::mac("02:00:00:00:00:07"), T).has_value());
  CHECK(error_of(ask(f.core, "4107@acme", "alice").message) == 481);
}

TEST_CASE("lookup: a policy refusal is 403 with the fixed reason and no address") {
  EdgePolicyConfig policy;
  policy.rules.push_back({{"4106"}, {"alice"}, {}});
  Fixture f(policy);
  auto a = ask(f.core, "4106@acme", "bob@other");
  CHECK(error_of(a.message) == 403);
  CHECK(proto::read_error_code(*a.message.find(proto::attr::error_code))->reason == kPolicyRefusedReason);
  CHECK(a.message.find(proto::attr::lease_address) == nullptr);
  CHECK(a.message.find(proto::attr::lease_expires) == nullptr);
  CHECK(a.message.find(proto::attr::user_id) == nullptr);
  // The refusal looks the same whether or not the extension is bound.
  EdgePolicyConfig deny_all;
  deny_all.default_allow = false;
  Fixture g(deny_all);
  auto bound = ask(g.core, "4106@acme", "bob");
  auto unbound = ask(g.core, "4999@acme", "bob");
  CHECK(error_of(bound.message) == 403);
  CHECK(error_of(unbound.message) == 403);
  CHECK(bound.bytes == unbound.bytes);
  // alice is still allowed through the first policy.
  CHECK(ask(f.core, "4106@acme", "alice").message.message_class == proto::MessageClass::success);
}

TEST_CASE("lookup: missing attributes and other methods are 400, a foreign version 426") {
  Fixture f;
  CHECK(error_of(ask(f.core, "4106@acme", "").message) == 400);
  CHECK(error_of(ask(f.core, "", "alice").message) == 400);
  proto::TransactionId id;
  proto::MessageBuilder other(proto::MessageClass::request, proto::method::lookup, id);
  auto bytes = other.finish();
  auto decoded = proto::decode(bytes);
  auto response = f.core.respond(decoded->message, T);
  CHECK(error_of(proto::decode(response)->message) == 400);
  proto::MessageBuilder v2(proto::MessageClass::request, proto::method::forwarded_lookup, id);
  v2.add_u32(proto::attr::protocol_version, 2);
  v2.add_string(proto::attr::user_id, "4106@acme");
  v2.add_string(proto::attr::caller_id, "alice");
  bytes = v2.finish();
  decoded = proto::decode(bytes);
  response = f.core.respond(decoded->message, T);
  CHECK(error_of(proto::decode(response)->message) == 426);
}

// Under held reads (a loop turn's lookups, NodeLink::hold_for_turn) a lookup
// answers from what an earlier one read in the same snapshot; a write by
// anyone makes a new snapshot. The writer here is a second table handle, as
// `tsunagu-lan-agent bind` in another process would be: nothing tells the
// agent's table of the write but LMDB's snapshot ID.
TEST_CASE("lookup: held reads answer from the snapshot's first read; any write is seen at the next hold") {
  Fixture f;
  auto other_writer = alloc::AllocationTable::open(*f.t.env, alloc::TableOptions{});
  REQUIRE(other_writer.has_value());
  auto address_of = [&](int64_t now) {
    auto a = ask(f.core, "4106@acme", "alice", now);
    REQUIRE(a.message.message_class == proto::MessageClass::success);
    auto addresses = a.message.find_all(proto::attr::lease_address);
    REQUIRE(addresses.size() == 1);
    return proto::read_xor_address(*addresses[0], a.message)->ip_string();
  };
  REQUIRE(f.t.table->hold_reads().has_value());
  CHECK(address_of(T) == "10.99.0.68");
  CHECK(address_of(T + 60) == "10.99.0.68");
  // The lease read live expires within the same snapshot: 481, not a stale address.
  CHECK(error_of(ask(f.core, "4106@acme", "alice", T + 121).message) == 481);
  f.t.table->release_reads();

  REQUIRE(other_writer->apply(grant("02:0a:0b:0c:0d:0e", "10.99.0.70", T + 300, T + 10), T + 10).has_value());
  REQUIRE(f.t.table->hold_reads().has_value());
  CHECK(address_of(T + 20) == "10.99.0.70");
  CHECK(address_of(T + 20) == "10.99.0.70");
  f.t.table->release_reads();

  REQUIRE(other_writer->unbind("4106", T + 30).has_value());
  REQUIRE(f.t.table->hold_reads().has_value());
  CHECK(error_of(ask(f.core, "4106@acme", "alice", T + 40).message) == 404);
  f.t.table->release_reads();

  // Without held reads every lookup reads the table itself.
  REQUIRE(other_writer->bind("4106", *alloc::ClientRef::mac("02:0a:0b:0c:0d:0e"), T + 50).has_value());
  CHECK(address_of(T + 60) == "10.99.0.70");
}

TEST_CASE("hello: the request claims every domain and prefix; responses are classified") {
  TempTable t;
  AgentCore core(*t.table, AgentIdentity{"acme", {"acme", "acme2"}, {"+81-6-1234-"}}, EdgePolicy());
  proto::TransactionId id;
  proto::MessageBuilder b(proto::MessageClass::request, proto::method::agent_hello, id);
  core.fill_hello(b);
  auto bytes = b.finish();
  auto m = proto::decode(bytes)->message;
  CHECK(m.find_all(proto::attr::domain).size() == 2);
  CHECK(m.find_all(proto::attr::number_prefix).size() == 1);

  auto response = [&](proto::MessageClass cls, uint16_t code) {
    proto::MessageBuilder r(cls, proto::method::agent_hello, id);
    if (cls == proto::MessageClass::error) r.add_error(code, "why");
    else r.add_string(proto::attr::agent_name, "acme");
    auto out = r.finish();
    return AgentCore::read_hello_response(proto::decode(out)->message);
  };
  CHECK(response(proto::MessageClass::success, 0).status == HelloStatus::accepted);
  CHECK(response(proto::MessageClass::success, 0).agent_name == "acme");
  CHECK(response(proto::MessageClass::error, 403).status == HelloStatus::not_enrolled);
  CHECK(response(proto::MessageClass::error, 409).status == HelloStatus::domain_held);
  CHECK(response(proto::MessageClass::error, 426).status == HelloStatus::bad_version);
  CHECK(response(proto::MessageClass::error, 500).status == HelloStatus::other);
}
