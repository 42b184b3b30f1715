// Browser calls through the node (rendezvous/web_calls.cpp): a page's
// messages on its event socket against a real NodeCore, with a terminal on a
// TLS link as the other party, and SDP captured from Chromium
// (tests/unit/webrtc/fixtures). Each side sees what the other sent, by the
// core's own call flow: ring, answer, candidates, hang-up, no answer, busy.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "base/audit.hpp"

#include "tests/unit/rendezvous/web_api_harness.hpp"
#include "tests/unit/webrtc/fixtures/read_fixture.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;
using json = nlohmann::json;
namespace sig = tsunagu::proto;

namespace {

using webrtc::testing::fixture;

// A logged-in page with its event socket open; events collected.
struct Page {
  Browser browser;
  uint64_t session = 0;
  std::vector<json> events;

  json take(const std::string& type) {
    for (auto it = events.begin(); it != events.end(); ++it) {
      if ((*it)["type"] == type) {
        json found = *it;
        events.erase(it);
        return found;
      }
    }
    std::string seen;
    for (const auto& e : events) seen += e.dump() + "\n";
    FAIL("no " << type << " event; events:\n" << seen);
    return {};
  }
};

void open_page(WebNode& node, Page& page, const std::string& id, const std::string& password) {
  auto answer = node.log_in(page.browser, id, password);
  REQUIRE_MESSAGE(answer.response.status == 200, answer.response.body);
  auto session = node.session_of(page.browser);
  REQUIRE(session.has_value());
  page.session = *session;
  node.api().subscribe(page.session, [&page](std::string event) { page.events.push_back(json::parse(event)); }, node.now());
  node.pump();
}

void say(WebNode& node, Page& page, const json& message) {
  node.api().socket_message(page.session, message.dump(), node.now());
  node.pump();
}

// The one message the core sent `link` with `method`, decoded (its bytes kept alive in `held`).
std::optional<proto::Message> sent_to(std::vector<NodeAction>& actions, LinkId link, uint16_t method, Bytes& held) {
  for (auto& action : actions) {
    if (action.link != link || action.kind != NodeAction::Kind::send) continue;
    auto decoded = proto::decode(action.message);
    if (decoded && decoded->message.method == method) {
      held = action.message;
      return proto::decode(held)->message;
    }
  }
  return std::nullopt;
}

std::string text_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}
uint32_t u32_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  REQUIRE_MESSAGE(a != nullptr, "attribute " << type << " missing");
  return proto::read_u32(*a).value_or(999);
}

proto::TransactionId txn(uint8_t n) {
  proto::TransactionId id;
  id.bytes[0] = std::byte{0x7e};
  id.bytes[1] = std::byte{n};
  return id;
}

NodeSettings with_turn() {
  NodeSettings settings = web_test_settings();
  settings.turn_secret = "a shared secret with coturn";
  settings.turn_servers = {proto::SocketAddress::v4({192, 0, 2, 10}, 3478)};
  settings.stun_server = proto::SocketAddress::v4({192, 0, 2, 10}, 3478);
  settings.consent_timeout_s = 5;
  settings.max_ringing_per_user = 3;
  return settings;
}

// The set-up of every "a page calls a terminal" case: alice on her page, bob's
// terminal logged in on link 1, and the steps of the call as each side takes them.
struct PageCallsTerminal {
  WebNode node{with_turn()};
  Page alice;
  Bytes held;  // the bytes of the last message ring() decoded

  PageCallsTerminal() {
    node.add_account("alice", "correct horse");
    node.add_account("bob", "bob's password");
    node.terminal_login(1, "bob", "bob's password");
    node.take_terminal_actions();
    open_page(node, alice, "alice", "correct horse");
  }
  // The page calls bob: the node's call_prepared.
  json call() {
    say(node, alice, {{"type", "call"}, {"to", "bob"}});
    return alice.take("call_prepared");
  }
  // The page's offer, and the ring it became on the terminal's link.
  proto::Message ring(const std::string& call_id, const std::string& sdp) {
    say(node, alice, {{"type", "offer"}, {"call_id", call_id}, {"sdp", sdp}});
    auto actions = node.take_terminal_actions();
    auto ring = sent_to(actions, 1, sig::method::ring, held);
    REQUIRE(ring.has_value());
    return *ring;
  }
  // The terminal accepts with its SDP answer.
  void answer(const proto::Message& ring, const std::string& sdp) {
    proto::MessageBuilder ok = proto::MessageBuilder::response_to(ring, proto::MessageClass::success);
    ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
    ok.add_string(sig::attr::ice_description, sdp);
    node.terminal_send(1, ok.finish());
  }
};

}  // namespace

TEST_CASE("a page calls a terminal: prepared with TURN, the ring carries its SDP and says browser, the answer comes back") {
  PageCallsTerminal call;
  WebNode& node = call.node;
  Page& alice = call.alice;
  Bytes& held = call.held;
  json prepared = call.call();
  std::string call_id = prepared["call_id"];
  CHECK(call_id.size() == 32);
  CHECK(prepared["peer"] == "terminal");
  REQUIRE(prepared["ice_servers"].size() == 2);
  CHECK(prepared["ice_servers"][0]["urls"][0] == "stun:192.0.2.10:3478");
  CHECK(prepared["ice_servers"][1]["urls"][0] == "turn:192.0.2.10:3478?transport=udp");
  CHECK(prepared["ice_servers"][1]["username"].get<std::string>().ends_with(":alice"));
  CHECK(!prepared["ice_servers"][1]["credential"].get<std::string>().empty());

  std::string offer = fixture("chromium_loopback_offer_gathered.sdp");
  proto::Message ring = call.ring(call_id, offer);
  CHECK(alice.take("ringing")["call_id"] == call_id);
  CHECK(text_of(ring, sig::attr::ice_description) == offer);  // the page's fingerprint, as the page sent it
  CHECK(text_of(ring, sig::attr::caller_id) == "alice");
  CHECK(u32_of(ring, sig::attr::media_profile) == sig::media_profile::webrtc);

  // The terminal answers in the WebRTC profile; a candidate trickles each way.
  std::string answer = fixture("chromium_loopback_answer.sdp");
  call.answer(ring, answer);
  json accepted = alice.take("accepted");
  CHECK(accepted["call_id"] == call_id);
  CHECK(accepted["sdp"] == answer);
  auto actions = node.take_terminal_actions();
  auto event = sent_to(actions, 1, sig::method::call_event, held);
  REQUIRE(event.has_value());
  CHECK(u32_of(*event, sig::attr::call_state) == sig::call_state::accepted);
  CHECK(u32_of(*event, sig::attr::media_profile) == sig::media_profile::webrtc);

  const std::string candidate = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0";
  say(node, alice, {{"type", "candidate"}, {"call_id", call_id}, {"candidate", candidate}});
  actions = node.take_terminal_actions();
  auto relayed = sent_to(actions, 1, sig::method::call_candidate, held);
  REQUIRE(relayed.has_value());
  CHECK(text_of(*relayed, sig::attr::ice_candidate) == candidate);
  proto::MessageBuilder back(proto::MessageClass::indication, sig::method::call_candidate, txn(1));
  back.add_u32(sig::attr::protocol_version, sig::protocol_version);
  back.add_string(sig::attr::call_id, call_id);
  back.add_string(sig::attr::ice_candidate, "candidate:2 1 udp 2122260223 127.0.0.1 40000 typ host");
  node.terminal_send(1, back.finish());
  CHECK(alice.take("candidate")["candidate"] == "candidate:2 1 udp 2122260223 127.0.0.1 40000 typ host");

  CHECK(node.api().browser_call_counters().calls_placed == 1);

  // The page hangs up: the terminal hears the call ended (200), the admin view has no call left.
  say(node, alice, {{"type", "hangup"}, {"call_id", call_id}});
  actions = node.take_terminal_actions();
  auto ended = sent_to(actions, 1, sig::method::call_event, held);
  REQUIRE(ended.has_value());
  CHECK(u32_of(*ended, sig::attr::call_state) == sig::call_state::ended);
  CHECK(u32_of(*ended, sig::attr::end_code) == sig::error::hung_up);
  CHECK(node.core().calls_in_progress() == 0);
}

TEST_CASE("a terminal calls a page: the page is a presence while it takes calls, rung in WebRTC's profile") {
  WebNode node(with_turn());
  node.add_account("alice", "correct horse");
  node.add_account("bob", "bob's password");
  Page bob;
  open_page(node, bob, "bob", "bob's password");
  node.terminal_login(2, "alice", "correct horse");
  node.take_terminal_actions();

  // Before the page says it takes calls, bob is offline (a query link).
  auto call = [&](uint8_t n, std::vector<std::pair<uint16_t, std::string>> strings) {
    proto::MessageBuilder b(proto::MessageClass::request, sig::method::call, txn(n));
    b.add_u32(sig::attr::protocol_version, sig::protocol_version);
    for (const auto& [type, value] : strings) b.add_string(type, value);
    b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
    node.terminal_send(2, b.finish());
    auto actions = node.take_terminal_actions();
    Bytes held;
    REQUIRE(sent_to(actions, 2, sig::method::call, held).has_value());
    return held;  // the caller decodes its own copy: a Message views the bytes it came from
  };
  auto reply_of = [](const Bytes& bytes) { return proto::decode(bytes)->message; };
  Bytes refused_bytes = call(1, {{sig::attr::user_id, "bob"}});
  proto::Message refused = reply_of(refused_bytes);
  REQUIRE(refused.message_class == proto::MessageClass::error);
  CHECK(proto::read_error_code(*refused.find(proto::attr::error_code))->code == sig::error::offline);

  say(node, bob, {{"type", "available"}});
  CHECK(bob.take("available")["ok"] == true);
  auto looked_up = node.request(bob.browser, "GET", "/api/lookup?id=bob");
  CHECK(json::parse(looked_up.response.body)["state"] == "online");

  Bytes prepared_bytes = call(2, {{sig::attr::user_id, "bob"}});
  proto::Message prepared_message = reply_of(prepared_bytes);
  proto::Message prepared = proto::decode(prepared_bytes)->message;
  REQUIRE(prepared.message_class == proto::MessageClass::success);
  CHECK(u32_of(prepared, sig::attr::media_profile) == sig::media_profile::webrtc);  // offer SDP, not the native description
  std::string call_id = text_of(prepared, sig::attr::call_id);
  std::string offer = fixture("chromium_mdns_offer_gathered.sdp");
  Bytes rung_bytes = call(3, {{sig::attr::call_id, call_id}, {sig::attr::ice_description, offer}});
  proto::Message rung = reply_of(rung_bytes);
  proto::Message ringing = proto::decode(rung_bytes)->message;
  CHECK(ringing.message_class == proto::MessageClass::success);

  json ring = bob.take("ring");
  CHECK(ring["call_id"] == call_id);
  CHECK(ring["from"] == "alice");
  CHECK(ring["sdp"] == offer);
  CHECK(ring["in_call"] == false);
  say(node, bob, {{"type", "ice_servers"}, {"call_id", call_id}});
  json servers = bob.take("ice_servers");
  REQUIRE(servers["ice_servers"].size() == 2);
  CHECK(servers["ice_servers"][1]["username"].get<std::string>().ends_with(":bob"));

  std::string answer = fixture("chromium_mdns_answer.sdp");
  say(node, bob, {{"type", "answer"}, {"call_id", call_id}, {"sdp", answer}});
  auto actions = node.take_terminal_actions();
  Bytes held;
  auto accepted = sent_to(actions, 2, sig::method::call_event, held);
  REQUIRE(accepted.has_value());
  CHECK(u32_of(*accepted, sig::attr::call_state) == sig::call_state::accepted);
  CHECK(text_of(*accepted, sig::attr::ice_description) == answer);
  CHECK(u32_of(*accepted, sig::attr::media_profile) == sig::media_profile::webrtc);
  CHECK(bob.take("accepted")["call_id"] == call_id);
  CHECK(json::parse(node.request(bob.browser, "GET", "/api/lookup?id=bob").response.body)["state"] == "busy");

  CHECK(node.api().browser_call_counters().rings_delivered == 1);
  CHECK(node.api().browser_call_counters().calls_answered == 1);

  // The terminal refused the page's DTLS certificate and hangs up saying so
  // (ERROR-CODE 488): the page hears 488 with the reason, and the node counts it.
  // (A hang-up without it is a 200 for the other party, node_core_test.cpp.)
  proto::MessageBuilder hangup(proto::MessageClass::request, sig::method::hangup, txn(4));
  hangup.add_u32(sig::attr::protocol_version, sig::protocol_version);
  hangup.add_string(sig::attr::call_id, call_id);
  hangup.add_error(sig::error::media_refused, "DTLS with the browser: fingerprint AB:CD, signalled 01:02");
  node.terminal_send(2, hangup.finish());
  json ended = bob.take("ended");
  CHECK(ended["code"] == sig::error::media_refused);
  CHECK(ended["reason"] == "Not Acceptable Here: DTLS with the browser: fingerprint AB:CD, signalled 01:02");
  CHECK(node.core().counters().calls_ended[static_cast<size_t>(CallEndReason::media_refused)] == 1);

  // The page leaves: bob is offline again, and stays logged in on the web.
  node.api().socket_closed(bob.session, node.now());
  node.pump();
  CHECK(json::parse(node.request(bob.browser, "GET", "/api/lookup?id=bob").response.body)["state"] == "offline");
}

TEST_CASE("browser calls: no answer, busy, declined, a page that leaves mid-call, and the limits of the core") {
  WebNode node(with_turn());
  node.add_account("alice", "correct horse");
  node.add_account("bob", "bob's password");
  node.add_account("carol", "carol's password");
  Page alice, bob, carol;
  open_page(node, alice, "alice", "correct horse");
  open_page(node, bob, "bob", "bob's password");
  open_page(node, carol, "carol", "carol's password");
  say(node, bob, {{"type", "available"}});
  bob.take("available");
  std::string offer = fixture("chromium_loopback_offer_gathered.sdp");
  auto place = [&](Page& page, const std::string& to) {
    say(node, page, {{"type", "call"}, {"to", to}});
    std::string id = page.take("call_prepared")["call_id"];
    say(node, page, {{"type", "offer"}, {"call_id", id}, {"sdp", offer}});
    page.take("ringing");
    return id;
  };

  SUBCASE("nobody answers: 408 after the consent timeout, so the page can offer voicemail") {
    std::string id = place(alice, "bob");
    bob.take("ring");
    node.advance_ms(5001);
    node.tick();
    json ended = alice.take("ended");
    CHECK(ended["call_id"] == id);
    CHECK(ended["code"] == sig::error::no_answer);
    CHECK(bob.take("ended")["code"] == sig::error::no_answer);
  }
  SUBCASE("declined and busy answers from the page") {
    std::string id = place(alice, "bob");
    bob.take("ring");
    say(node, bob, {{"type", "decline"}, {"call_id", id}});
    CHECK(alice.take("ended")["code"] == sig::error::declined);
    id = place(alice, "bob");
    bob.take("ring");
    say(node, bob, {{"type", "decline"}, {"call_id", id}, {"busy", true}});
    CHECK(alice.take("ended")["code"] == sig::error::busy);
  }
  SUBCASE("a callee in a call is busy for the next caller (no call waiting)") {
    std::string id = place(alice, "bob");
    bob.take("ring");
    say(node, bob, {{"type", "answer"}, {"call_id", id}, {"sdp", fixture("chromium_loopback_answer.sdp")}});
    CHECK(alice.take("accepted")["call_id"] == id);
    say(node, carol, {{"type", "call"}, {"to", "bob"}});
    json failed = carol.take("call_failed");
    CHECK(failed["code"] == sig::error::busy);
    // Bob's page goes away mid-call: alice hears link lost.
    node.api().socket_closed(bob.session, node.now());
    node.pump();
    CHECK(alice.take("ended")["code"] == sig::error::link_lost);
    CHECK(node.core().calls_in_progress() == 0);
  }
  SUBCASE("a caller's page that goes away ends its call: the callee hears 410") {
    std::string id = place(alice, "bob");
    bob.take("ring");
    say(node, bob, {{"type", "answer"}, {"call_id", id}, {"sdp", fixture("chromium_loopback_answer.sdp")}});
    alice.take("accepted");
    node.api().socket_closed(alice.session, node.now());
    node.pump();
    CHECK(bob.take("ended")["code"] == sig::error::link_lost);
    CHECK(node.core().calls_in_progress() == 0);
  }
  SUBCASE("unavailable: the page is no longer rung, and stays logged in") {
    say(node, bob, {{"type", "unavailable"}});
    CHECK(bob.take("available")["ok"] == false);
    say(node, alice, {{"type", "call"}, {"to", "bob"}});
    CHECK(alice.take("call_failed")["code"] == sig::error::offline);
    CHECK(node.request(bob.browser, "GET", "/api/session").response.status == 200);
  }
  SUBCASE("a user whose terminal is online is rung there: the page does not displace it") {
    node.terminal_login(5, "carol", "carol's password");
    say(node, carol, {{"type", "available"}});
    json taken = carol.take("available");
    CHECK(taken["ok"] == false);
    CHECK(taken["reason"] == "you are online at a terminal; calls ring there");
  }
  SUBCASE("too many calls ringing from one user: the core's 429") {
    node.add_account("dave", "dave's password");
    node.add_account("erin", "erin's password");
    Page dave, erin;
    open_page(node, dave, "dave", "dave's password");
    open_page(node, erin, "erin", "erin's password");
    for (Page* callee : {&carol, &dave, &erin}) {
      say(node, *callee, {{"type", "available"}});
      callee->take("available");
    }
    int refused = 0;
    for (const char* to : {"bob", "carol", "dave", "erin"}) {
      say(node, alice, {{"type", "call"}, {"to", to}});
      for (const auto& e : alice.events) refused += e["type"] == "call_failed" && e["code"] == sig::error::too_many_attempts;
    }
    CHECK_MESSAGE(refused == 1, json(alice.events).dump());
  }
}

TEST_CASE("browser calls, bad input: malformed SDP, bad candidates and messages are refused with a reason and counted") {
  PageCallsTerminal call;
  WebNode& node = call.node;
  Page& alice = call.alice;
  std::string id = call.call()["call_id"];
  node.take_terminal_actions();

  std::string offer = fixture("chromium_loopback_offer_gathered.sdp");
  std::string no_fingerprint = offer;
  size_t at = no_fingerprint.find("a=fingerprint:");
  REQUIRE(at != std::string::npos);
  no_fingerprint.erase(at, no_fingerprint.find('\n', at) + 1 - at);
  say(node, alice, {{"type", "offer"}, {"call_id", id}, {"sdp", no_fingerprint}});
  CHECK(alice.take("call_error")["reason"] == "\"sdp\": missing sha-256 fingerprint: no a=fingerprint:sha-256");
  say(node, alice, {{"type", "offer"}, {"call_id", id}, {"sdp", "v=0\r\nnonsense\r\n"}});
  CHECK(alice.take("call_error")["reason"].get<std::string>().starts_with("\"sdp\": malformed: line 2"));
  say(node, alice, {{"type", "offer"}, {"call_id", id}, {"sdp", std::string(5000, 'a')}});
  CHECK(alice.take("call_error")["reason"] == "\"sdp\" is longer than 4096 bytes");
  say(node, alice, {{"type", "candidate"}, {"call_id", id}, {"candidate", "candidate:1 1 udp 1 127.0.0.1 99999 typ host"}});
  CHECK(alice.take("call_error")["reason"] == "\"candidate\": bad candidate port");
  say(node, alice, {{"type", "ring everyone"}});
  CHECK(alice.take("call_error")["reason"] == "unknown message type \"ring everyone\"");
  node.api().socket_message(alice.session, "not json", node.now());
  CHECK(alice.take("call_error")["reason"] == "a message must be a JSON object");
  say(node, alice, {{"type", "offer"}, {"call_id", "../../etc"}, {"sdp", offer}});
  CHECK(alice.take("call_error")["reason"] == "\"call_id\" must be the 32 hex digits the node gave");
  say(node, alice, {{"type", "call"}, {"to", "not an id"}});
  CHECK(alice.take("call_error")["reason"] == "\"to\" is not a user ID, EXT@DOMAIN or +NUMBER");
  const auto& counters = node.api().browser_call_counters();
  CHECK(counters.messages_refused == 8);
  CHECK(counters.sdp_refused == 3);
  CHECK(counters.candidates_refused == 1);
  // Nothing of it rang bob.
  auto actions = node.take_terminal_actions();
  Bytes held;
  CHECK(!sent_to(actions, 1, sig::method::ring, held).has_value());

  // Someone else's call ID: the core's 481 comes back as call_failed.
  say(node, alice, {{"type", "offer"}, {"call_id", std::string(32, 'a')}, {"sdp", offer}});
  CHECK(alice.take("call_failed")["code"] == sig::error::no_such_call);

  // A terminal that rings a page with its native description is declined with the reason.
  Page bob_page;
  node.terminal_gone(1);
  open_page(node, bob_page, "bob", "bob's password");
  say(node, bob_page, {{"type", "available"}});
  bob_page.take("available");
  node.terminal_login(3, "alice", "correct horse");
  node.take_terminal_actions();
  proto::MessageBuilder native(proto::MessageClass::request, sig::method::call, txn(9));
  native.add_u32(sig::attr::protocol_version, sig::protocol_version);
  native.add_string(sig::attr::user_id, "bob");
  native.add_string(sig::attr::ice_description, "ufrag pwd\ncandidate ...");
  node.terminal_send(3, native.finish());
  actions = node.take_terminal_actions();
  auto ended = sent_to(actions, 3, sig::method::call_event, held);
  REQUIRE(ended.has_value());
  CHECK(u32_of(*ended, sig::attr::end_code) == sig::error::declined);
  CHECK(text_of(*ended, sig::attr::notice_reason) ==
        "Declined: the callee is a browser and the caller's terminal does not speak WebRTC");
  CHECK(bob_page.events.empty());
  CHECK(node.api().browser_call_counters().rings_refused == 1);
}

TEST_CASE("browser calls: the page's call_path (its selected pair from getStats) is the call end audit line's path=") {
  PageCallsTerminal call;
  WebNode& node = call.node;
  Page& alice = call.alice;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  std::string call_id = call.call()["call_id"];
  proto::Message ring = call.ring(call_id, fixture("chromium_loopback_offer_gathered.sdp"));

  // Before the call is accepted a report is not kept (the core takes it only from a party of an accepted call).
  say(node, alice, {{"type", "call_path"}, {"call_id", call_id}, {"local", "relay"}, {"remote", "relay"}});
  call.answer(ring, fixture("chromium_loopback_answer.sdp"));
  alice.take("accepted");

  // Only the candidate types getStats() names: anything else is refused with a reason and counted.
  uint64_t refused = node.api().browser_call_counters().messages_refused;
  for (const json& bad : {json{{"type", "call_path"}, {"call_id", call_id}, {"local", "host/x"}, {"remote", "host"}},
                          json{{"type", "call_path"}, {"call_id", call_id}, {"local", "host"}, {"remote", "HOST"}},
                          json{{"type", "call_path"}, {"call_id", call_id}, {"local", "host"}},
                          json{{"type", "call_path"}, {"call_id", call_id}, {"local", "host"}, {"remote", 7}}}) {
    say(node, alice, bad);
    CHECK(alice.take("call_error")["reason"].get<std::string>().find("\"") != std::string::npos);
  }
  CHECK(node.api().browser_call_counters().messages_refused == refused + 4);

  say(node, alice, {{"type", "call_path"}, {"call_id", call_id}, {"local", "prflx"}, {"remote", "host"}});
  // The first report holds: a second (or the terminal's) changes nothing.
  say(node, alice, {{"type", "call_path"}, {"call_id", call_id}, {"local", "relay"}, {"remote", "relay"}});
  say(node, alice, {{"type", "hangup"}, {"call_id", call_id}});
  const audit::AuditEvent* ended = nullptr;
  for (const auto& event : sink.events)
    if (event.event == "call" && event.field("state") == "ended") ended = &event;
  REQUIRE(ended != nullptr);
  MESSAGE(audit::format_audit_line(*ended));
  CHECK(ended->field("path") == "prflx/host");
}
