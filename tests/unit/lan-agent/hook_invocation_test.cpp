#include "lan-agent/hook_invocation.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "lan-agent/hook_protocol.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {
using Args = std::vector<std::string_view>;
HookServer detect(Args args, Args env = {}) { return detect_hook_server(args, env); }
}  // namespace

TEST_CASE("hook: dnsmasq, ISC and Kea are told apart by argv[1] and the environment") {
  CHECK(detect({"add", "02:0a:0b:0c:0d:0e", "10.99.0.68", "ext-4106"}) == HookServer::dnsmasq);
  CHECK(detect({"old", "x", "y"}) == HookServer::dnsmasq);
  CHECK(detect({"del", "x", "y"}) == HookServer::dnsmasq);
  CHECK(detect({"init"}) == HookServer::dnsmasq);
  CHECK(detect({"tftp", "1", "2", "3"}) == HookServer::dnsmasq);
  CHECK(detect({"some-future-action"}, {"DNSMASQ_INTERFACE=lan0"}) == HookServer::dnsmasq);
  CHECK(detect({"commit", "10.99.0.100", "2:a:b:c:d:e", "ext-4108", "120"}) == HookServer::isc);
  CHECK(detect({"release", "10.99.0.100", "2:a:b:c:d:e"}) == HookServer::isc);
  CHECK(detect({"expiry", "10.99.0.100", "2:a:b:c:d:e"}) == HookServer::isc);
  CHECK(detect({"leases4_committed"}, {"LEASES4_SIZE=1"}) == HookServer::kea);
  CHECK(detect({"lease4_renew"}) == HookServer::kea);
  CHECK(detect({"lease6_release"}) == HookServer::kea);
  CHECK(detect({"leases6_committed"}) == HookServer::kea);
  CHECK(detect({}) == HookServer::unknown);
  CHECK(detect({"bogus"}) == HookServer::unknown);
}

TEST_CASE("hook: own options come first and are stripped before the server's arguments") {
  Args args{"--config", "/etc/x.toml", "--chain", "/usr/local/bin/old-hook", "add", "m", "ip"};
  auto o = parse_hook_options(args);
  CHECK(o.error.empty());
  CHECK(o.config == "/etc/x.toml");
  CHECK(o.chain == "/usr/local/bin/old-hook");
  CHECK(o.first_server_arg == 4);
  Args plain{"add", "--config"};
  CHECK(parse_hook_options(plain).first_server_arg == 0);
  Args dashdash{"--", "--config"};
  CHECK(parse_hook_options(dashdash).first_server_arg == 1);
  Args missing{"--chain"};
  CHECK_FALSE(parse_hook_options(missing).error.empty());
}

TEST_CASE("hook: a dnsmasq add becomes a grant and init carries no event") {
  Args args{"add", "02:0a:0b:0c:0d:0e", "10.99.0.68", "ext-4106"};
  Args env{"DNSMASQ_LEASE_EXPIRES=1795334187", "DNSMASQ_INTERFACE=lan0"};
  alloc::HookCall call{args, env, 1795334067};
  auto events = events_of(HookServer::dnsmasq, call);
  REQUIRE(events.has_value());
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].action == alloc::LeaseAction::grant);
  CHECK((*events)[0].expires == 1795334187);
  Args init{"init"};
  alloc::HookCall init_call{init, {}, 1};
  CHECK(events_of(HookServer::dnsmasq, init_call)->empty());
}

TEST_CASE("hook: an ISC commit with unpadded MAC parses") {
  Args args{"commit", "10.99.0.100", "2:a:b:c:d:e", "ext-4108", "120"};
  alloc::HookCall call{args, {}, 1000};
  auto events = events_of(HookServer::isc, call);
  REQUIRE(events.has_value());
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].mac == "02:0a:0b:0c:0d:0e");
  CHECK((*events)[0].expires == 1120);
}

TEST_CASE("hook protocol: events round trip; garbage and excess are refused") {
  std::vector<alloc::LeaseEvent> events{testing::grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000),
                                        testing::grant("02:0a:0b:0c:0d:0f", "fd99::200", 3000, 1000)};
  auto request = encode_events_request(events);
  REQUIRE(request.has_value());
  CHECK((*request)[0] == kRequestEvents);
  auto decoded = decode_events_request(ByteView(*request).subspan(1));
  REQUIRE(decoded.has_value());
  CHECK(*decoded == events);
  Bytes damaged = *request;
  damaged[10] ^= std::byte{0xff};
  CHECK_FALSE(decode_events_request(ByteView(damaged).subspan(1)).has_value());
  std::vector<alloc::LeaseEvent> many(kMaxHookEvents + 1, events[0]);
  CHECK_FALSE(encode_events_request(many).has_value());
}

TEST_CASE("hook protocol: init lists live dnsmasq IPv4 leases in dnsmasq's format") {
  alloc::LeaseRecord live;
  live.state = alloc::LeaseState::active;
  live.source = alloc::ServerKind::dnsmasq;
  live.address = *alloc::parse_ip_address("10.99.0.68");
  live.mac = "02:0a:0b:0c:0d:0e";
  live.client_id = "01:02:0a:0b:0c:0d:0e";
  live.hostname = "ext-4106";
  live.expires = live.live_until = 2000;
  alloc::LeaseRecord ended = live;
  ended.state = alloc::LeaseState::released;
  alloc::LeaseRecord kea = live;
  kea.source = alloc::ServerKind::kea;
  alloc::LeaseRecord forever = live;
  forever.mac = "02:00:00:00:00:01";
  forever.hostname.clear();
  forever.client_id.clear();
  forever.expires = alloc::LeaseEvent::kInfinite;
  forever.live_until = alloc::LeaseEvent::kInfinite;
  CHECK(dnsmasq_init_listing({live, ended, kea, forever}, 1000) ==
        "2000 02:0a:0b:0c:0d:0e 10.99.0.68 ext-4106 01:02:0a:0b:0c:0d:0e\n"
        "0 02:00:00:00:00:01 10.99.0.68 * *\n");
}
