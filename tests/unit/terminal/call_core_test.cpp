// CallCore without sockets: the node's answers and events are real encoded
// messages (MessageBuilder, then decode), ICE events are fed by hand, and
// every exit the CLI documents is reached from the input that causes it.
#include "terminal/call_core.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "call_test_support.hpp"
#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "security/digest.hpp"
#include "terminal/ice_session.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::terminal {
namespace {

namespace sig = tsunagu::proto;
using testing::all_of_type;
using testing::MemoryOutput;
using testing::printed;

constexpr uint64_t ms = 1'000'000;

IceDescription sample_description(std::string ufrag) {
  return IceDescription{std::move(ufrag), "0123456789abcdefABCDEF+/",
                        {"a=candidate:1 1 UDP 2013266431 127.0.0.1 40000 typ host"}};
}

SelectedPair host_pair() {
  return SelectedPair{"host", "host", *proto::SocketAddress::parse("127.0.0.1:40000"),
                      *proto::SocketAddress::parse("127.0.0.1:40001")};
}

// Messages as the node would send them; the bytes live as long as the fixture.
struct Messages {
  std::deque<Bytes> keep;
  proto::TransactionId next_id() {
    proto::TransactionId id;
    id.bytes[0] = std::byte(static_cast<uint8_t>(keep.size() + 1));
    return id;
  }
  const proto::Message& add(proto::MessageBuilder builder) {
    keep.push_back(builder.finish());
    auto decoded = proto::decode(keep.back());
    REQUIRE(decoded.has_value());
    decoded_.push_back(decoded->message);
    return decoded_.back();
  }
  const proto::Message& prepared(const std::string& call_id, bool with_turn) {
    proto::MessageBuilder b(proto::MessageClass::success, sig::method::call, next_id());
    b.add_string(sig::attr::call_id, call_id);
    b.add_u32(sig::attr::call_state, sig::call_state::preparing);
    b.add_xor_address(sig::attr::stun_server, *proto::SocketAddress::parse("192.0.2.1:3478"));
    if (with_turn) {
      b.add_xor_address(sig::attr::turn_server, *proto::SocketAddress::parse("192.0.2.2:3478"));
      b.add_string(sig::attr::turn_username, "1700000000:alice");
      b.add_string(sig::attr::turn_password, "secret");
    }
    return add(std::move(b));
  }
  const proto::Message& ringing(uint32_t state = sig::call_state::ringing) {
    proto::MessageBuilder b(proto::MessageClass::success, sig::method::call, next_id());
    b.add_u32(sig::attr::call_state, state);
    return add(std::move(b));
  }
  const proto::Message& refusal(uint16_t code, std::string_view reason) {
    proto::MessageBuilder b(proto::MessageClass::error, sig::method::call, next_id());
    b.add_error(code, reason);
    return add(std::move(b));
  }
  const proto::Message& accepted(const std::string& call_id, const std::string& answer, size_t key_size = 32) {
    proto::MessageBuilder b(proto::MessageClass::indication, sig::method::call_event, next_id());
    b.add_string(sig::attr::call_id, call_id);
    b.add_u32(sig::attr::call_state, sig::call_state::accepted);
    Bytes key = testing::test_secret();
    key.resize(key_size);
    b.add(sig::attr::key_material, key);
    if (!answer.empty()) b.add_string(sig::attr::ice_description, answer);
    return add(std::move(b));
  }
  const proto::Message& ended(const std::string& call_id, uint32_t code, std::string_view reason = {}) {
    proto::MessageBuilder b(proto::MessageClass::indication, sig::method::call_event, next_id());
    b.add_string(sig::attr::call_id, call_id);
    b.add_u32(sig::attr::call_state, sig::call_state::ended);
    b.add_u32(sig::attr::end_code, code);
    if (!reason.empty()) b.add_string(sig::attr::notice_reason, reason);
    return add(std::move(b));
  }
  const proto::Message& ring(const std::string& call_id, const std::string& caller, const std::string& offer,
                             bool reliable) {
    proto::MessageBuilder b(proto::MessageClass::request, sig::method::ring, next_id());
    b.add_string(sig::attr::call_id, call_id);
    b.add_string(sig::attr::caller_id, caller);
    b.add_string(sig::attr::ice_description, offer);
    b.add_u32(sig::attr::call_media, reliable ? 1 : 0);
    b.add_xor_address(sig::attr::stun_server, *proto::SocketAddress::parse("192.0.2.1:3478"));
    return add(std::move(b));
  }
  const proto::Message& turn_answer() {
    proto::MessageBuilder b(proto::MessageClass::success, sig::method::turn_credentials, next_id());
    b.add_xor_address(sig::attr::turn_server, *proto::SocketAddress::parse("192.0.2.2:3478"));
    b.add_string(sig::attr::turn_username, "1700000000:bob");
    b.add_string(sig::attr::turn_password, "secret");
    return add(std::move(b));
  }

 private:
  std::deque<proto::Message> decoded_;
};

std::string encoded(const std::string& ufrag) { return *encode_ice_description(sample_description(ufrag)); }

CallCoreConfig caller_config(TransferMode mode = TransferMode::pipe, bool reliable = true) {
  CallCoreConfig config;
  config.caller = true;
  config.reliable = reliable;
  config.callee = "bob";
  config.ice_timeout_ns = 20'000 * ms;
  config.transfer.mode = mode;
  return config;
}

// A caller driven up to the state a test needs.
struct Caller {
  Messages node;
  MemoryOutput output;
  CallCore core;
  uint64_t now = 1000 * ms;
  std::vector<CallAction> seen;

  explicit Caller(CallCoreConfig config = caller_config()) : core(std::move(config), output, 1000 * ms) {}

  std::vector<CallAction> take() {
    auto actions = core.take_actions();
    seen.insert(seen.end(), actions.begin(), actions.end());
    return actions;
  }
  void prepared(bool with_turn = false) {
    core.logged_in(now);
    auto sent = all_of_type<call::SendPrepare>(take());
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].callee == "bob");
    CHECK(core.state() == CallState::preparing);
    core.prepare_answered(&node.prepared("c-1", with_turn), {}, now);
  }
  void placed() {
    prepared();
    core.ice_gathered(sample_description("caLR"), now);
    core.place_answered(&node.ringing(), {}, now);
    REQUIRE(core.state() == CallState::ringing);
  }
  void accepted() {
    placed();
    core.call_event(node.accepted("c-1", encoded("caLE")), now);
    REQUIRE(core.state() == CallState::accepted);
  }
  void connected() {
    accepted();
    now += 50 * ms;
    core.ice_connected(host_pair(), now);
  }
  int exit() {
    REQUIRE(core.exit_code().has_value());
    return *core.exit_code();
  }
};

void check_refused_at_prepare(uint16_t code, int expected_exit) {
  Caller caller;
  caller.core.logged_in(caller.now);
  caller.core.prepare_answered(&caller.node.refusal(code, "Why not"), {}, caller.now);
  auto actions = caller.take();
  CHECK(caller.core.state() == CallState::ended);
  CHECK(caller.exit() == expected_exit);
  CHECK(printed(actions).find("tsunagu: bob: Why not") != std::string::npos);
  CHECK(all_of_type<call::StopLink>(actions).size() == 1);  // no call to hang up
  CHECK(all_of_type<call::StartIce>(actions).empty());
}

void check_refused_at_place(uint16_t code, int expected_exit) {
  Caller caller;
  caller.prepared();
  caller.core.ice_gathered(sample_description("caLR"), caller.now);
  caller.core.place_answered(&caller.node.refusal(code, "No"), {}, caller.now);
  auto actions = caller.take();
  CHECK(caller.exit() == expected_exit);
  CHECK(all_of_type<call::ReleaseMedia>(actions).size() == 1);
  auto hangups = all_of_type<call::SendHangup>(actions);
  REQUIRE(hangups.size() == 1);
  CHECK(hangups[0].call_id == "c-1");
}

void check_ended(uint32_t end_code, int expected_exit) {
  Caller caller;
  caller.placed();
  caller.core.call_event(caller.node.ended("c-1", end_code, "Because"), caller.now);
  CHECK(caller.core.state() == CallState::ended);
  CHECK(caller.exit() == expected_exit);
}

}  // namespace

TEST_CASE("a caller prepares with the user ID only, gathers with the node's servers, then places the call with the offer") {
  Caller caller(caller_config());
  caller.prepared(true);
  auto actions = caller.take();
  auto ice = all_of_type<call::StartIce>(actions);
  REQUIRE(ice.size() == 1);
  CHECK(ice[0].config.controlling);
  CHECK(ice[0].config.reliable);
  REQUIRE(ice[0].config.turn.has_value());
  CHECK(ice[0].config.turn->username == "1700000000:alice");
  CHECK(ice[0].config.stun_server->to_string() == "192.0.2.1:3478");
  CHECK(caller.core.call_id() == "c-1");
  CHECK(caller.core.next_deadline() == caller.now + 20'000 * ms);  // the ICE deadline runs from gathering

  caller.core.ice_gathered(sample_description("caLR"), caller.now);
  auto place = all_of_type<call::SendPlace>(caller.take());
  REQUIRE(place.size() == 1);
  CHECK(place[0].call_id == "c-1");
  CHECK(place[0].callee == "bob");
  CHECK(place[0].offer == encoded("caLR"));
  caller.core.place_answered(&caller.node.ringing(), {}, caller.now);
  CHECK(caller.core.state() == CallState::ringing);
  CHECK(printed(caller.take()) == "ringing bob (call c-1)\n");
}

TEST_CASE("a call routed to a LAN agent says so while it rings") {
  Caller caller;
  caller.prepared();
  caller.core.ice_gathered(sample_description("caLR"), caller.now);
  caller.core.place_answered(&caller.node.ringing(sig::call_state::routed_to_agent), {}, caller.now);
  CHECK(printed(caller.take()).find("calling bob through its LAN agent (call c-1)") != std::string::npos);
}

TEST_CASE("an accepted call sets the callee's answer as remote, connects and starts the transfer") {
  Caller caller;
  caller.placed();
  caller.take();
  caller.now += 300 * ms;
  caller.core.call_event(caller.node.accepted("c-1", encoded("caLE")), caller.now);
  auto actions = caller.take();
  CHECK(caller.core.state() == CallState::accepted);
  auto remote = all_of_type<call::SetRemote>(actions);
  REQUIRE(remote.size() == 1);
  CHECK(remote[0].remote == sample_description("caLE"));
  CHECK(printed(actions).find("accepted after 300 ms") != std::string::npos);

  caller.now += 100 * ms;
  caller.core.ice_connected(host_pair(), caller.now);
  actions = caller.take();
  CHECK(caller.core.state() == CallState::transfer);  // a pipe starts at once
  CHECK(all_of_type<transfer::StartInput>(actions).size() == 1);
  CHECK(printed(actions).find("connected after 400 ms: host 127.0.0.1:40000 <-> host 127.0.0.1:40001") !=
        std::string::npos);
  CHECK_FALSE(caller.core.next_deadline().has_value());  // no ICE deadline once connected
  auto reported = all_of_type<call::ReportPath>(actions);  // for the node's audit line
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].call_id == "c-1");
  CHECK(reported[0].path == "host/host");

  caller.core.ice_pair_changed(host_pair());
  auto changed = caller.take();
  CHECK(printed(changed).find("path changed: ") == 0);
  CHECK(all_of_type<call::ReportPath>(changed).empty());  // the first path is the one reported
}

TEST_CASE("a hang-up before the stream ended fails the caller with 11: data may be missing") {
  Caller caller;
  caller.connected();
  caller.core.call_event(caller.node.ended("c-1", sig::error::hung_up), caller.now);
  CHECK(caller.exit() == exit_call_failed);
  CHECK(printed(caller.take()).find("data may be missing") != std::string::npos);
}

TEST_CASE("a hang-up of an echo test (datagrams) exits 0") {
  Caller caller(caller_config(TransferMode::echo_test, false));
  caller.connected();
  caller.core.call_event(caller.node.ended("c-1", sig::error::hung_up), caller.now);
  CHECK(caller.exit() == 0);
  CHECK(all_of_type<call::SendHangup>(caller.take()).size() == 1);
}

TEST_CASE("the echo test's pace is the call's deadline and its report ends the call") {
  CallCoreConfig config = caller_config(TransferMode::echo_test, false);
  config.transfer.echo_count = 1;
  Caller caller(config);
  caller.connected();
  caller.take();
  auto deadline = caller.core.next_deadline();
  REQUIRE(deadline.has_value());
  CHECK(*deadline == caller.now);
  caller.core.tick(*deadline);
  CHECK(all_of_type<transfer::SendDatagram>(caller.take()).size() == 1);
  for (int i = 0; i < 60 && !caller.core.done(); ++i) caller.core.tick(*caller.core.next_deadline());
  CHECK(caller.exit() == exit_call_failed);  // no reply: 100 % loss
  auto actions = caller.take();
  CHECK(printed(actions).find("echo test: 1 sent, 0 returned, loss 100.0%") != std::string::npos);
  CHECK(all_of_type<call::ReleaseMedia>(actions).size() == 1);
  CHECK(all_of_type<call::SendHangup>(actions).size() == 1);
}

TEST_CASE("a caller's hang-up is answered before the link stops") {
  Caller caller;
  caller.connected();
  caller.core.interrupted(caller.now);
  auto actions = caller.take();
  CHECK(caller.exit() == exit_interrupted);
  REQUIRE(all_of_type<call::SendHangup>(actions).size() == 1);
  CHECK(all_of_type<call::StopLink>(actions).empty());
  caller.core.hangup_answered();
  CHECK(all_of_type<call::StopLink>(caller.take()).size() == 1);
  caller.core.link_stopped(ClientFailure::none, {}, caller.now);
  CHECK(caller.exit() == exit_interrupted);  // what stops after the end changes nothing
}

TEST_CASE("^C before the node answered the preparation stops the link with 130") {
  Caller caller;
  caller.core.logged_in(caller.now);
  caller.core.interrupted(caller.now);
  CHECK(caller.exit() == exit_interrupted);
  CHECK(all_of_type<call::StopLink>(caller.take()).size() == 1);
}

TEST_CASE("every refusal of the call's preparation has its exit code") {
  check_refused_at_prepare(sig::error::unknown_user, exit_unknown_user);  // 3
  check_refused_at_prepare(sig::error::offline, exit_offline);            // 4
  check_refused_at_prepare(sig::error::agent_offline, exit_offline);      // 4
  check_refused_at_prepare(sig::error::unauthenticated, exit_auth);       // 5
  check_refused_at_prepare(sig::error::too_many_attempts, exit_rate_limited);  // 6
  check_refused_at_prepare(sig::error::forbidden, exit_refused);          // 7
  check_refused_at_prepare(sig::error::busy, exit_call_busy);             // 8
}

TEST_CASE("a 429 on placing the call exits 6, not 7") {
  check_refused_at_place(sig::error::too_many_attempts, exit_rate_limited);
  check_refused_at_place(sig::error::no_such_call, exit_refused);
  check_refused_at_place(sig::error::busy, exit_call_busy);
}

TEST_CASE("no answer to the preparation fails with 11 and to the placing with 1 (network)") {
  Caller preparing;
  preparing.core.logged_in(preparing.now);
  preparing.core.prepare_answered(nullptr, "request timed out", preparing.now);
  CHECK(preparing.exit() == exit_call_failed);
  CHECK(printed(preparing.take()).find("tsunagu: call: request timed out") != std::string::npos);

  Caller placing;
  placing.prepared();
  placing.core.ice_gathered(sample_description("caLR"), placing.now);
  placing.core.place_answered(nullptr, "not connected", placing.now);
  CHECK(placing.exit() == exit_network);
}

TEST_CASE("every END-CODE of a call_event has its exit code") {
  check_ended(sig::error::declined, exit_call_declined);    // 9
  check_ended(sig::error::cancelled, exit_call_declined);   // 9
  check_ended(sig::error::no_answer, exit_call_no_answer);  // 10
  check_ended(sig::error::busy, exit_call_busy);            // 8
  check_ended(sig::error::link_lost, exit_call_failed);     // 11
  check_ended(sig::error::unknown_user, exit_unknown_user); // 3, a LAN agent's answer
  check_ended(sig::error::no_live_lease, exit_offline);     // 4
  check_ended(sig::error::agent_timeout, exit_offline);     // 4
  check_ended(sig::error::agent_policy_refused, exit_refused);  // 7
  check_ended(sig::error::hung_up, 0);
}

TEST_CASE("events of another call are ignored") {
  Caller caller;
  caller.placed();
  caller.core.call_event(caller.node.ended("c-other", sig::error::declined), caller.now);
  CHECK(caller.core.state() == CallState::ringing);
}

TEST_CASE("the link's failure before a call exists is the exit code: auth 5, network 1") {
  Caller auth;
  auth.core.link_stopped(ClientFailure::unauthenticated, "login refused", auth.now);
  CHECK(auth.exit() == exit_auth);
  CHECK(printed(auth.take()).find("tsunagu: login refused") != std::string::npos);
  Caller network;
  network.core.logged_in(network.now);
  network.core.link_stopped(ClientFailure::network, "connection reset", network.now);
  CHECK(network.exit() == exit_network);
  Caller limited;
  limited.core.link_stopped(ClientFailure::rate_limited, "too many logins", limited.now);
  CHECK(limited.exit() == exit_rate_limited);
}

TEST_CASE("losing the link during a call fails it with 11") {
  Caller caller;
  caller.connected();
  caller.core.link_stopped(ClientFailure::network, "connection reset", caller.now);
  CHECK(caller.exit() == exit_call_failed);
  CHECK(printed(caller.take()).find("tsunagu: link to the node lost") != std::string::npos);
}

TEST_CASE("ICE that does not connect by the deadline fails with 11 and the session's explanation") {
  Caller caller;
  caller.accepted();
  caller.take();
  auto deadline = caller.core.next_deadline();
  REQUIRE(deadline.has_value());
  caller.core.tick(*deadline - 1);
  CHECK(all_of_type<call::ExplainIceFailure>(caller.take()).empty());
  caller.core.tick(*deadline);
  CHECK(all_of_type<call::ExplainIceFailure>(caller.take()).size() == 1);
  caller.core.ice_gave_up("ICE connectivity checks failed (local candidates: host; remote: host)", *deadline);
  CHECK(caller.exit() == exit_call_failed);
  CHECK(printed(caller.take()).find("tsunagu: no media path: ICE connectivity checks failed") != std::string::npos);
}

TEST_CASE("ICE failing, or refusing its configuration, fails the call with 11") {
  Caller failed;
  failed.accepted();
  failed.core.ice_failed("checks failed", failed.now);
  CHECK(failed.exit() == exit_call_failed);
  CHECK(printed(failed.take()).find("tsunagu: ICE failed: checks failed") != std::string::npos);
  Caller refused;
  refused.prepared();
  refused.core.ice_setup_failed("bad TURN server", refused.now);
  CHECK(refused.exit() == exit_call_failed);
}

TEST_CASE("--relay-only without a TURN server from the node fails before gathering") {
  CallCoreConfig config = caller_config();
  config.relay_only = true;
  Caller caller(config);
  caller.prepared(false);
  auto actions = caller.take();
  CHECK(caller.exit() == exit_call_failed);
  CHECK(all_of_type<call::StartIce>(actions).empty());
  CHECK(printed(actions).find("--relay-only, but the node hands out no TURN server") != std::string::npos);
}

TEST_CASE("a malformed answer or unusable key material fails the call with 11") {
  Caller answer;
  answer.placed();
  answer.core.call_event(answer.node.accepted("c-1", "not ice"), answer.now);
  CHECK(answer.exit() == exit_call_failed);
  CHECK(printed(answer.take()).find("the peer's ICE description is malformed") != std::string::npos);
  Caller key;
  key.placed();
  key.core.call_event(key.node.accepted("c-1", encoded("caLE"), 16), key.now);
  CHECK(key.exit() == exit_call_failed);
  CHECK(printed(key.take()).find("no usable key material") != std::string::npos);
}

TEST_CASE("a file that cannot be opened ends the call with the usage exit code") {
  Caller caller(caller_config(TransferMode::send_file));
  caller.connected();
  caller.core.input_failed(exit_usage, "cannot open x: No such file or directory", caller.now);
  CHECK(caller.exit() == exit_usage);
  CHECK(printed(caller.take()).find("tsunagu: cannot open x") != std::string::npos);
}

// ------------------------------------------------------------------- callee

namespace {

CallCoreConfig callee_config(bool reliable = true) {
  CallCoreConfig config;
  config.caller = false;
  config.reliable = reliable;
  config.ice_timeout_ns = 20'000 * ms;
  config.fetch_turn = true;
  return config;
}

struct Callee {
  Messages node;
  MemoryOutput output;
  CallCore core;
  uint64_t now = 1000 * ms;
  explicit Callee(CallCoreConfig config) : core(std::move(config), output, 1000 * ms) {}
  void rung() { core.ring(node.ring("c-9", "alice", encoded("caLR"), true), now); }
};

}  // namespace

TEST_CASE("a callee that accepts asks TURN credentials with the CALL-ID, gathers with them and answers the ring") {
  CallCoreConfig config = callee_config();
  config.auto_accept_from = {"alice"};
  Callee callee(config);
  callee.rung();
  auto actions = callee.core.take_actions();
  CHECK(callee.core.state() == CallState::accepted);
  CHECK(printed(actions).find("accepting a call from alice (data stream)") != std::string::npos);
  auto fetch = all_of_type<call::FetchTurn>(actions);
  REQUIRE(fetch.size() == 1);
  CHECK(fetch[0].call_id == "c-9");
  CHECK(all_of_type<call::StartIce>(actions).empty());  // not before the credentials

  callee.core.turn_answered(&callee.node.turn_answer(), callee.now);
  actions = callee.core.take_actions();
  auto ice = all_of_type<call::StartIce>(actions);
  REQUIRE(ice.size() == 1);
  CHECK_FALSE(ice[0].config.controlling);
  REQUIRE(ice[0].config.turn.has_value());
  CHECK(ice[0].config.turn->username == "1700000000:bob");
  CHECK(ice[0].config.stun_server.has_value());  // from the ring
  auto remote = all_of_type<call::SetRemote>(actions);
  REQUIRE(remote.size() == 1);
  CHECK(remote[0].remote == sample_description("caLR"));

  callee.core.ice_gathered(sample_description("caLE"), callee.now);
  auto replies = all_of_type<call::ReplyRing>(callee.core.take_actions());
  REQUIRE(replies.size() == 1);
  auto decoded = proto::decode(replies[0].message);
  REQUIRE(decoded.has_value());
  CHECK(decoded->message.message_class == proto::MessageClass::success);
  CHECK(decoded->message.method == sig::method::ring);
  const auto* answer = decoded->message.find(sig::attr::ice_description);
  REQUIRE(answer != nullptr);
  CHECK(proto::read_string(*answer) == encoded("caLE"));

  callee.core.call_event(callee.node.accepted("c-9", {}), callee.now);
  CHECK(callee.core.state() == CallState::accepted);
  callee.core.ice_connected(host_pair(), callee.now);
  CHECK(callee.core.state() == CallState::transfer);  // a pipe both ways
  callee.core.call_event(callee.node.ended("c-9", sig::error::hung_up, "hung up"), callee.now);
  actions = callee.core.take_actions();
  // The caller's stream had not ended: the callee, too, says data may be missing.
  auto over = all_of_type<call::CallOver>(actions);
  REQUIRE(over.size() == 1);
  CHECK(over[0].answered);
  CHECK(over[0].exit_code == exit_call_failed);
  CHECK(all_of_type<call::SendHangup>(actions).empty());  // the callee never hangs up through the node
}

TEST_CASE("without TURN credentials from the node the callee answers without a relay") {
  CallCoreConfig config = callee_config();
  config.auto_accept_from = {"*"};
  Callee callee(config);
  callee.rung();
  callee.core.take_actions();
  callee.core.turn_answered(nullptr, callee.now);
  auto actions = callee.core.take_actions();
  auto ice = all_of_type<call::StartIce>(actions);
  REQUIRE(ice.size() == 1);
  CHECK_FALSE(ice[0].config.turn.has_value());
  CHECK(printed(actions).find("answering without a relay") != std::string::npos);
}

TEST_CASE("a LAN ring carries its servers: the callee gathers at once") {
  CallCoreConfig config = callee_config(false);
  config.fetch_turn = false;
  config.auto_accept_from = {"*"};
  Callee callee(config);
  callee.rung();
  auto actions = callee.core.take_actions();
  CHECK(all_of_type<call::FetchTurn>(actions).empty());
  CHECK(all_of_type<call::StartIce>(actions).size() == 1);
}

TEST_CASE("a callee that cannot ask declines with 603 and the ring is not counted as a call") {
  Callee callee(callee_config());
  callee.rung();
  auto actions = callee.core.take_actions();
  CHECK(printed(actions).find("declined a call from alice") != std::string::npos);
  auto replies = all_of_type<call::ReplyRing>(actions);
  REQUIRE(replies.size() == 1);
  auto decoded = proto::decode(replies[0].message);
  REQUIRE(decoded.has_value());
  CHECK(decoded->message.message_class == proto::MessageClass::error);
  auto over = all_of_type<call::CallOver>(actions);
  REQUIRE(over.size() == 1);
  CHECK_FALSE(over[0].answered);
}

TEST_CASE("a callee with a terminal is asked, and its answer decides") {
  CallCoreConfig config = callee_config();
  config.can_prompt = true;
  Callee yes(config);
  yes.rung();
  auto asked = all_of_type<call::PromptAccept>(yes.core.take_actions());
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].caller == "alice");
  CHECK(yes.core.state() == CallState::ringing);
  yes.core.accept_decision(true, yes.now);
  CHECK(all_of_type<call::FetchTurn>(yes.core.take_actions()).size() == 1);

  Callee no(config);
  no.rung();
  no.core.take_actions();
  no.core.accept_decision(false, no.now);
  CHECK(all_of_type<call::ReplyRing>(no.core.take_actions()).size() == 1);
  CHECK(no.core.done());
}

TEST_CASE("a caller giving up while the callee is asked ends the ring without an exit code for listen") {
  CallCoreConfig config = callee_config();
  config.can_prompt = true;
  Callee callee(config);
  callee.rung();
  callee.core.take_actions();
  callee.core.call_event(callee.node.ended("c-9", sig::error::cancelled, "cancelled"), callee.now);
  auto actions = callee.core.take_actions();
  auto over = all_of_type<call::CallOver>(actions);
  REQUIRE(over.size() == 1);
  CHECK_FALSE(over[0].answered);
  CHECK(printed(actions).find("call ended: cancelled") != std::string::npos);
  callee.core.accept_decision(true, callee.now);  // too late: nothing happens
  CHECK(callee.core.take_actions().empty());
}

TEST_CASE("a callee's malformed offer fails the call with 11") {
  CallCoreConfig config = callee_config();
  config.auto_accept_from = {"*"};
  config.fetch_turn = false;
  Callee callee(config);
  callee.core.ring(callee.node.ring("c-9", "alice", "garbage", true), callee.now);
  auto over = all_of_type<call::CallOver>(callee.core.take_actions());
  REQUIRE(over.size() == 1);
  CHECK(over[0].exit_code == exit_call_failed);
}

TEST_CASE("a call the caller cancels after the callee answered is a clean end for the callee") {
  CallCoreConfig config = callee_config(false);
  config.auto_accept_from = {"*"};
  config.fetch_turn = false;
  Callee callee(config);
  callee.rung();
  callee.core.ice_gathered(sample_description("caLE"), callee.now);
  callee.core.take_actions();
  callee.core.call_event(callee.node.ended("c-9", sig::error::no_answer), callee.now);
  auto over = all_of_type<call::CallOver>(callee.core.take_actions());
  REQUIRE(over.size() == 1);
  CHECK(over[0].answered);
  CHECK(over[0].exit_code == 0);
}

TEST_CASE("a phone call's hold goes out as a sealed datagram once connected, and not after the call ended") {
  CallCoreConfig config = caller_config(TransferMode::voice, false);
  config.transfer.voice = VoiceSetup{};
  Caller caller(config);
  caller.placed();
  caller.take();
  caller.core.call_event(caller.node.accepted("c-1", encoded("caLE")), caller.now);
  caller.core.ice_connected(host_pair(), caller.now);
  caller.take();
  caller.core.voice_hold(true);
  auto actions = caller.take();
  CHECK(all_of_type<transfer::SendDatagram>(actions).size() == 1);  // the hold frame
  CHECK(printed(actions).find("on hold") != std::string::npos);
  CHECK(caller.core.transfer().held());
  caller.core.voice_hold(true);  // already held: nothing more
  CHECK(caller.take().empty());
  caller.core.waiting_tone(true);
  caller.core.call_event(caller.node.ended("c-1", 200, "hung up"), caller.now);
  caller.take();
  caller.core.voice_hold(false);
  CHECK(all_of_type<transfer::SendDatagram>(caller.take()).empty());
}

TEST_CASE("every state has a name") {
  for (auto state : {CallState::idle, CallState::preparing, CallState::ringing, CallState::accepted,
                     CallState::connected, CallState::transfer, CallState::ended})
    CHECK(to_string(state) != "?");
}

TEST_CASE("a caller and a callee core carry a file between them end to end") {
  Caller caller(caller_config(TransferMode::send_file));
  caller.connected();
  CallCoreConfig config = callee_config();
  config.auto_accept_from = {"*"};
  config.fetch_turn = false;
  config.transfer.receive_directory = "inbox";
  // The packet keys are bound to the CALL-ID: the callee is rung for the caller's c-1.
  Callee same(config);
  same.core.ring(same.node.ring("c-1", "alice", encoded("caLR"), true), same.now);
  same.core.ice_gathered(sample_description("caLE"), same.now);
  same.core.call_event(same.node.accepted("c-1", {}), same.now);
  same.core.ice_connected(host_pair(), same.now);
  same.core.take_actions();
  caller.take();
  caller.core.file_opened("notes.txt", 5, caller.now);
  caller.core.input(to_bytes("hello"), caller.now);
  caller.core.input_end(caller.now);
  for (int round = 0; round < 10; ++round) {
    bool moved = false;
    for (auto& a : caller.take())
      if (auto* s = std::get_if<transfer::SendStream>(&a)) {
        same.core.ice_data(s->bytes, same.now);
        moved = true;
      }
    caller.core.output_drained(caller.now);
    for (auto& a : same.core.take_actions())
      if (auto* s = std::get_if<transfer::SendStream>(&a)) {
        caller.core.ice_data(s->bytes, caller.now);
        moved = true;
      }
    if (!moved) break;
  }
  CHECK(same.output.stored.at("notes.txt") == "hello");
  CHECK(caller.exit() == 0);
  CHECK(printed(caller.seen).find("delivered notes.txt") != std::string::npos);
}

// WebRTC's profile (docs/webrtc.md): two cores told by MEDIA-PROFILE that the
// other party is a browser speak SDP, DTLS and SRTP to each other, as a
// terminal and a page do. Datagrams move between them by hand.
namespace {

struct WebRtcPair {
  Caller caller;
  Callee callee;
  std::string answer_sdp;

  static CallCoreConfig voice_caller() {
    CallCoreConfig config = caller_config(TransferMode::voice, false);
    config.transfer.voice = VoiceSetup{};
    config.transfer.voice->media.ssrc = 0x1111;
    config.transfer.voice->duration_ns = 60'000 * ms;
    return config;
  }
  static CallCoreConfig voice_callee() {
    CallCoreConfig config = callee_config(false);
    config.auto_accept_from = {"*"};
    config.fetch_turn = false;
    config.transfer.voice = VoiceSetup{};
    config.transfer.voice->media.ssrc = 0x2222;
    return config;
  }
  WebRtcPair() : caller(voice_caller()), callee(voice_callee()) {}

  const proto::Message& with_profile(Messages& node, proto::MessageBuilder b) {
    b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
    return node.add(std::move(b));
  }

  // Up to both sides' ICE connected (unless not `select`: then the test does);
  // `tamper` edits the callee's SDP answer on its way.
  // `before_accepted` runs before the caller hears the answer.
  void connect(const std::function<void(std::string&)>& tamper = {}, bool select = true,
               const std::function<void()>& before_accepted = {}) {
    caller.core.logged_in(caller.now);
    caller.take();
    proto::MessageBuilder prepared(proto::MessageClass::success, sig::method::call, caller.node.next_id());
    prepared.add_string(sig::attr::call_id, "c-1");
    caller.core.prepare_answered(&with_profile(caller.node, std::move(prepared)), {}, caller.now);
    caller.core.ice_gathered(sample_description("caLR"), caller.now);
    auto places = all_of_type<call::SendPlace>(caller.take());
    REQUIRE(places.size() == 1);
    CHECK(places[0].webrtc);
    CHECK(places[0].offer.find("a=setup:actpass") != std::string::npos);
    CHECK(places[0].offer.find("a=fingerprint:sha-256 " + caller.core.webrtc()->fingerprint()) != std::string::npos);
    caller.core.place_answered(&caller.node.ringing(), {}, caller.now);

    proto::MessageBuilder ring(proto::MessageClass::request, sig::method::ring, callee.node.next_id());
    ring.add_string(sig::attr::call_id, "c-1");
    ring.add_string(sig::attr::caller_id, "alice");
    ring.add_string(sig::attr::ice_description, places[0].offer);
    ring.add_u32(sig::attr::call_media, 0);
    callee.core.ring(with_profile(callee.node, std::move(ring)), callee.now);
    callee.core.ice_gathered(sample_description("caLE"), callee.now);
    auto actions = callee.core.take_actions();
    auto replies = all_of_type<call::ReplyRing>(actions);
    REQUIRE(replies.size() == 1);
    CHECK(all_of_type<call::SetRemote>(actions).size() == 1);
    auto reply = proto::decode(replies[0].message);
    REQUIRE(reply.has_value());
    CHECK(reply->message.message_class == proto::MessageClass::success);
    answer_sdp = std::string(proto::read_string(*reply->message.find(sig::attr::ice_description)));
    CHECK(answer_sdp.find("a=setup:active") != std::string::npos);
    if (tamper) tamper(answer_sdp);

    if (before_accepted) before_accepted();
    proto::MessageBuilder accepted(proto::MessageClass::indication, sig::method::call_event, caller.node.next_id());
    accepted.add_string(sig::attr::call_id, "c-1");
    accepted.add_u32(sig::attr::call_state, sig::call_state::accepted);
    accepted.add_string(sig::attr::ice_description, answer_sdp);
    caller.core.call_event(with_profile(caller.node, std::move(accepted)), caller.now);
    proto::MessageBuilder to_callee(proto::MessageClass::indication, sig::method::call_event, callee.node.next_id());
    to_callee.add_string(sig::attr::call_id, "c-1");
    to_callee.add_u32(sig::attr::call_state, sig::call_state::accepted);
    callee.core.call_event(with_profile(callee.node, std::move(to_callee)), callee.now);
    if (!select) return;
    caller.core.ice_connected(host_pair(), caller.now);
    callee.core.ice_connected(host_pair(), callee.now);
  }

  // Moves every datagram each way until none is left; 20 ms voice frames on
  // both sides. `source`: what each side is told a datagram came from.
  void run(int frames, std::optional<proto::SocketAddress> source = std::nullopt) {
    std::array<int16_t, media::frame_samples> playout{};
    for (int frame = 0; frame <= frames; ++frame) {
      for (int round = 0; round < 10; ++round) {
        bool moved = false;
        for (auto& a : caller.take())
          if (auto* d = std::get_if<transfer::SendDatagram>(&a)) {
            callee.core.ice_data(d->bytes, callee.now, source);
            moved = true;
          }
        for (auto& a : callee.core.take_actions())
          if (auto* d = std::get_if<transfer::SendDatagram>(&a)) {
            caller.core.ice_data(d->bytes, caller.now, source);
            moved = true;
          }
        if (!moved) break;
      }
      caller.now += 20 * ms;
      callee.now += 20 * ms;
      caller.core.voice_frame(nullptr, playout, caller.now);
      callee.core.voice_frame(nullptr, playout, callee.now);
    }
  }
};

}  // namespace

TEST_CASE("MEDIA-PROFILE webrtc: SDP offer and answer, DTLS, and the voice packets as SRTP both ways") {
  WebRtcPair pair;
  pair.connect();
  pair.run(50);
  REQUIRE(pair.caller.core.webrtc() != nullptr);
  REQUIRE(pair.callee.core.webrtc() != nullptr);
  CHECK(pair.callee.core.webrtc()->dtls_client());   // it answered setup:active
  CHECK_FALSE(pair.caller.core.webrtc()->dtls_client());
  CHECK(pair.caller.core.webrtc()->srtp_profile() == "SRTP_AEAD_AES_128_GCM");
  for (CallCore* core : {&pair.caller.core, &pair.callee.core}) {
    CHECK(core->state() == CallState::transfer);
    CHECK(core->webrtc()->counters().srtp_packets >= 40);
    CHECK(core->webrtc()->counters().dtls_refused == 0);
    REQUIRE(core->transfer().voice_stats() != nullptr);
    CHECK(core->transfer().voice_stats()->packets_received >= 40);
  }
  CHECK(printed(pair.caller.seen).find("DTLS done after") != std::string::npos);
  // The path goes to the node once DTLS keyed SRTP, not at ICE connected.
  std::optional<size_t> dtls_done, path_reported;
  for (size_t i = 0; i < pair.caller.seen.size(); ++i) {
    const CallAction& a = pair.caller.seen[i];
    if (const auto* p = std::get_if<transfer::Print>(&a); p && p->line.find("DTLS done after") != std::string::npos)
      dtls_done = i;
    if (const auto* r = std::get_if<call::ReportPath>(&a)) {
      CHECK_FALSE(path_reported.has_value());
      path_reported = i;
      CHECK(r->path == "host/host");
      CHECK(r->call_id == "c-1");
    }
  }
  REQUIRE(dtls_done.has_value());
  REQUIRE(path_reported.has_value());
  CHECK(*path_reported > *dtls_done);
}

TEST_CASE("MEDIA-PROFILE webrtc: a certificate other than the signalled fingerprint ends the call, said and counted") {
  WebRtcPair pair;
  pair.connect([](std::string& sdp) {
    auto at = sdp.find("a=fingerprint:sha-256 ") + std::string("a=fingerprint:sha-256 ").size();
    sdp[at] = sdp[at] == '0' ? '1' : '0';
  });
  pair.run(5);
  CHECK(pair.caller.core.state() == CallState::ended);
  CHECK(pair.caller.exit() == exit_call_failed);
  CHECK(printed(pair.caller.seen).find("DTLS with the browser") != std::string::npos);
  CHECK(pair.caller.core.webrtc()->counters().dtls_refused == 1);
  CHECK(pair.caller.core.webrtc()->counters().srtp_packets == 0);
  // ICE connected, but no media path came up: no path for the node's end line, which says media_refused.
  CHECK(all_of_type<call::ReportPath>(pair.caller.seen).empty());
  // The node hears why (ERROR-CODE 488 on the hang-up), and tells the page.
  auto hangups = all_of_type<call::SendHangup>(pair.caller.seen);
  REQUIRE(hangups.size() == 1);
  CHECK(hangups[0].refusal_code == sig::error::media_refused);
  CHECK(hangups[0].refusal_reason.find("fingerprint") != std::string::npos);
}

TEST_CASE("MEDIA-PROFILE webrtc: a page's trickled candidates wait for its description, then go to ICE one by one; "
          ".local, TCP and other calls' ones are not used") {
  WebRtcPair pair;
  auto trickle = [&pair](const std::string& text, const std::string& call_id = "c-1") {
    proto::MessageBuilder b(proto::MessageClass::indication, sig::method::call_candidate, pair.caller.node.next_id());
    b.add_string(sig::attr::call_id, call_id);
    b.add_string(sig::attr::ice_candidate, text);
    pair.caller.core.call_event(pair.caller.node.add(std::move(b)), pair.caller.now);
  };
  const std::string early = "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host generation 0";
  pair.connect({}, /*select=*/false, [&] {
    trickle(early);
    trickle("candidate:2 1 udp 2122260223 0b6a4c2e-1f9d-4a4e-9d2b-7c1e2f3a4b5c.local 50001 typ host generation 0");
    trickle("candidate:3 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0");
    trickle("candidate:4 1 udp 2122260223 192.0.2.4 50004 typ host", "another-call");
    auto actions = pair.caller.take();
    CHECK(all_of_type<call::AddRemoteCandidate>(actions).empty());  // no remote description yet
    CHECK(all_of_type<call::SetRemote>(actions).empty());
  });
  pair.caller.take();
  auto sets = all_of_type<call::SetRemote>(pair.caller.seen);
  REQUIRE(sets.size() == 1);
  const auto& lines = sets[0].remote.candidates;
  CHECK(std::count(lines.begin(), lines.end(), "a=" + early) == 1);  // added to the description's
  for (const auto& line : lines) {
    CHECK(line.find(".local") == std::string::npos);
    CHECK(line.find(" tcp ") == std::string::npos);
    CHECK(line.find("192.0.2.4") == std::string::npos);
  }

  const std::string later = "candidate:5 1 udp 1686052607 203.0.113.5 40000 typ srflx raddr 0.0.0.0 rport 0 generation 0";
  trickle(later);
  auto added = all_of_type<call::AddRemoteCandidate>(pair.caller.take());
  REQUIRE(added.size() == 1);
  CHECK(added[0].line == "a=" + later);
  // The page sends them all again once answered: each is taken once.
  trickle(early);
  trickle(later);
  CHECK(all_of_type<call::AddRemoteCandidate>(pair.caller.take()).empty());
  trickle("candidate:6 1 udp 2122260223 1f2e3d4c-0000-4000-8000-000000000000.local 50006 typ host");
  CHECK(all_of_type<call::AddRemoteCandidate>(pair.caller.take()).empty());
  trickle("not a candidate");
  CHECK(all_of_type<call::AddRemoteCandidate>(pair.caller.take()).empty());

  const WebRtcTransport& webrtc = *pair.caller.core.webrtc();
  CHECK(webrtc.counters().trickled_candidates == 2);
  CHECK(webrtc.mdns_candidates() == 2);
  CHECK(webrtc_report_json(webrtc).find("\"trickled_candidates\": 2") != std::string::npos);
}

std::vector<Bytes> datagrams_in(const std::vector<CallAction>& actions) {
  std::vector<Bytes> out;
  for (const auto& a : actions)
    if (const auto* d = std::get_if<transfer::SendDatagram>(&a)) out.push_back(d->bytes);
  return out;
}

TEST_CASE("MEDIA-PROFILE webrtc: DTLS from an address other than the selected pair's remote is dropped and counted, "
          "before and after selection; a replayed SRTP packet is refused and counted") {
  WebRtcPair pair;
  pair.connect({}, /*select=*/false);
  const proto::SocketAddress peer = host_pair().remote;
  const proto::SocketAddress elsewhere = *proto::SocketAddress::parse("127.0.0.1:40999");
  // The callee (setup:active, the DTLS client) sends its ClientHello once its ICE connected.
  pair.callee.core.ice_connected(host_pair(), pair.callee.now);
  auto hello = datagrams_in(pair.callee.core.take_actions());
  REQUIRE_FALSE(hello.empty());
  // It reaches the caller before the caller's ICE selected a pair: from elsewhere, and from the peer.
  for (const Bytes& record : hello) pair.caller.core.ice_data(record, pair.caller.now, elsewhere);
  for (const Bytes& record : hello) pair.caller.core.ice_data(record, pair.caller.now, peer);
  const WebRtcCounters& counters = pair.caller.core.webrtc()->counters();
  CHECK(counters.dtls_datagrams == 0);  // all wait for the selected pair
  pair.caller.core.ice_connected(host_pair(), pair.caller.now);
  CHECK(counters.dtls_wrong_address == hello.size());
  CHECK(counters.dtls_datagrams == hello.size());
  CHECK(counters.dtls_refused == 0);

  pair.run(50, peer);
  CHECK(pair.caller.core.state() == CallState::transfer);
  CHECK(counters.srtp_packets >= 40);
  // After selection: a record from elsewhere (a copy of the peer's) is dropped and counted; the call goes on.
  pair.caller.core.ice_data(hello[0], pair.caller.now, elsewhere);
  CHECK(counters.dtls_wrong_address == hello.size() + 1);
  CHECK(counters.dtls_refused == 0);
  CHECK(pair.caller.core.state() == CallState::transfer);
  CHECK(webrtc_report_json(*pair.caller.core.webrtc()).find("\"dtls_wrong_address\": " +
                                                           std::to_string(hello.size() + 1)) != std::string::npos);

  // SRTP replay: one of the callee's packets delivered twice counts once, then as a replay (libsrtp's window).
  std::array<int16_t, media::frame_samples> playout{};
  pair.callee.now += 20 * ms;
  pair.callee.core.voice_frame(nullptr, playout, pair.callee.now);
  auto media = datagrams_in(pair.callee.core.take_actions());
  REQUIRE_FALSE(media.empty());
  uint64_t taken = counters.srtp_packets, replays = counters.srtp_replays;
  pair.caller.core.ice_data(media[0], pair.caller.now, peer);
  pair.caller.core.ice_data(media[0], pair.caller.now, peer);
  CHECK(counters.srtp_packets == taken + 1);
  CHECK(counters.srtp_replays == replays + 1);
  CHECK(pair.caller.core.state() == CallState::transfer);
}

// The same two cores with their datagrams carried by real IceSessions (libnice
// on 127.0.0.1), and a third, real UDP socket that knows the caller's ICE
// credentials (as the callee, or anyone who read the signalling, does): it
// passes an authenticated connectivity check, so libnice takes its datagrams,
// then sends copies of the callee's DTLS records. IceSession hands each
// datagram's source to the core, which takes DTLS only from the selected
// pair's remote.
namespace {

struct Received {
  Bytes bytes;
  std::optional<proto::SocketAddress> source;
};

struct IceSide {
  std::unique_ptr<IceSession> session;
  std::optional<IceDescription> gathered;
  std::optional<SelectedPair> pair;
  std::deque<Received> inbox;
  std::string failed;
};

template <class Done>
bool run_loop_until(uv_loop_t* loop, Done done, int timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);
  const uint64_t deadline = uv_hrtime() + uint64_t(timeout_ms) * ms;
  while (!done() && uv_hrtime() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return done();
}

// A STUN Binding request as an ICE agent sends it (RFC 8445 7.1): USERNAME
// "receiver:sender", PRIORITY, ICE-CONTROLLED, MESSAGE-INTEGRITY keyed with the
// receiver's password, FINGERPRINT.
Bytes ice_check(const IceDescription& receiver, const std::string& sender_ufrag) {
  proto::TransactionId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = std::byte(0x40 + i);
  proto::MessageBuilder builder(proto::MessageClass::request, proto::method_binding, id);
  builder.add_string(proto::attr::username, receiver.ufrag + ":" + sender_ufrag);
  builder.add_u32(0x0024, 1'845'501'695);          // PRIORITY (a prflx candidate's)
  builder.add_u64(0x8029, 0x0123'4567'89ab'cdefu);  // ICE-CONTROLLED, the tie-breaker
  Bytes message = builder.finish(false);
  auto set_length = [&message](size_t length) {
    message[2] = std::byte(length >> 8);
    message[3] = std::byte(length & 0xff);
  };
  auto append = [&message](uint16_t type, ByteView value) {
    message.push_back(std::byte(type >> 8));
    message.push_back(std::byte(type & 0xff));
    message.push_back(std::byte(value.size() >> 8));
    message.push_back(std::byte(value.size() & 0xff));
    message.insert(message.end(), value.begin(), value.end());
  };
  set_length(message.size() - proto::header_size + 24);  // covers MESSAGE-INTEGRITY
  Bytes integrity = security::hmac_sha1(to_bytes(receiver.password), message);
  append(proto::attr::message_integrity, integrity);
  set_length(message.size() - proto::header_size + 8);  // and FINGERPRINT
  uint32_t crc = proto::crc32(message) ^ 0x5354554eu;
  const std::array<std::byte, 4> fingerprint{std::byte(crc >> 24), std::byte(crc >> 16), std::byte(crc >> 8),
                                             std::byte(crc)};
  append(proto::attr::fingerprint, fingerprint);
  return message;
}

// A non-blocking UDP socket on 127.0.0.1, closed with the test.
struct RogueSocket {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  proto::SocketAddress address;
  RogueSocket() {
    REQUIRE(fd >= 0);
    sockaddr_storage any{};
    transport::to_sockaddr(*proto::SocketAddress::parse("127.0.0.1:0"), &any);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(sockaddr_in)) == 0);
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0);
    address = transport::from_sockaddr(reinterpret_cast<const sockaddr*>(&bound));
  }
  ~RogueSocket() { ::close(fd); }
  void send(ByteView bytes, const proto::SocketAddress& to) {
    sockaddr_storage target{};
    transport::to_sockaddr(to, &target);
    CHECK(::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&target), sizeof(sockaddr_in)) ==
          ssize_t(bytes.size()));
  }
  // A STUN success response (class bits 0x0100 of the type) waiting on the socket.
  bool answered() {
    std::array<std::byte, 2048> buffer{};
    for (;;) {
      ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (got < 0) return false;
      if (got >= 20 && buffer[0] == std::byte(0x01) && buffer[1] == std::byte(0x01)) return true;
    }
  }
};

}  // namespace

TEST_CASE("MEDIA-PROFILE webrtc over real ICE: DTLS from a socket that passed a check but is not the selected pair's "
          "remote is dropped and counted; the call goes on") {
  WebRtcPair pair;
  pair.connect({}, /*select=*/false);
  uv_loop_t loop;
  uv_loop_init(&loop);
  IceSide caller_ice, callee_ice;
  auto make = [&loop](IceSide& self, IceSide& other, bool controlling) {
    IceConfig config;
    config.controlling = controlling;
    config.local_addresses = {*proto::SocketAddress::parse("127.0.0.1:0")};
    IceEvents events;
    events.on_gathered = [&self, &other](const IceDescription& d) {
      self.gathered = d;
      if (!other.gathered) return;
      self.session->set_remote(*other.gathered);
      other.session->set_remote(d);
    };
    events.on_connected = [&self](const SelectedPair& p) { self.pair = p; };
    events.on_data = [&self](ByteView data) {
      self.inbox.push_back({Bytes(data.begin(), data.end()), self.session->data_source()});
    };
    events.on_failed = [&self](std::string_view reason) { self.failed = std::string(reason); };
    auto created = IceSession::create(&loop, std::move(config), std::move(events));
    REQUIRE(created.has_value());
    self.session = std::move(*created);
  };
  make(caller_ice, callee_ice, true);
  make(callee_ice, caller_ice, false);
  caller_ice.session->start();
  callee_ice.session->start();
  REQUIRE_MESSAGE(run_loop_until(&loop, [&] { return caller_ice.pair && callee_ice.pair; }, 10'000),
                  "caller: ", caller_ice.failed, " callee: ", callee_ice.failed);
  const proto::SocketAddress caller_port = caller_ice.pair->local;
  CHECK(caller_ice.pair->remote == callee_ice.pair->local);

  // The rogue passes a connectivity check against the caller's port: from now on libnice takes its datagrams.
  RogueSocket rogue;
  REQUIRE(rogue.address != caller_ice.pair->remote);
  rogue.send(ice_check(*caller_ice.gathered, callee_ice.gathered->ufrag), caller_port);
  bool answered = false;
  REQUIRE(run_loop_until(&loop, [&] { return answered = answered || rogue.answered(); }, 5000));

  // The callee (DTLS client) sends its ClientHello; the rogue sends copies of it first.
  pair.caller.core.ice_connected(*caller_ice.pair, pair.caller.now);
  pair.callee.core.ice_connected(*callee_ice.pair, pair.callee.now);
  auto hello = datagrams_in(pair.callee.core.take_actions());
  REQUIRE_FALSE(hello.empty());
  for (const Bytes& record : hello) rogue.send(record, caller_port);
  REQUIRE(run_loop_until(&loop, [&] { return caller_ice.inbox.size() >= hello.size(); }, 5000));
  for (const Received& r : caller_ice.inbox) CHECK(r.source == rogue.address);  // libnice's `from`, passed up
  const WebRtcCounters& counters = pair.caller.core.webrtc()->counters();
  for (const Received& r : std::exchange(caller_ice.inbox, {}))
    pair.caller.core.ice_data(r.bytes, pair.caller.now, r.source);
  CHECK(counters.dtls_wrong_address == hello.size());
  CHECK(counters.dtls_datagrams == 0);

  // Then the real exchange: every datagram through ICE, 20 ms frames, until SRTP flows.
  for (const Bytes& record : hello) CHECK(callee_ice.session->send(record) == record.size());
  std::array<int16_t, media::frame_samples> playout{};
  auto carry = [&](std::vector<CallAction> actions, IceSide& ice) {
    for (auto& a : actions)
      if (auto* d = std::get_if<transfer::SendDatagram>(&a)) ice.session->send(d->bytes);
  };
  auto deliver = [](IceSide& ice, CallCore& core, uint64_t now) {
    for (const Received& r : std::exchange(ice.inbox, {})) core.ice_data(r.bytes, now, r.source);
  };
  for (int frame = 0; frame < 100 && counters.srtp_packets < 20; ++frame) {
    run_loop_until(&loop, [] { return false; }, 20);
    for (const Received& r : caller_ice.inbox) CHECK(r.source == caller_ice.pair->remote);
    deliver(caller_ice, pair.caller.core, pair.caller.now);
    deliver(callee_ice, pair.callee.core, pair.callee.now);
    pair.caller.now += 20 * ms;
    pair.callee.now += 20 * ms;
    pair.caller.core.voice_frame(nullptr, playout, pair.caller.now);
    pair.callee.core.voice_frame(nullptr, playout, pair.callee.now);
    carry(pair.caller.take(), caller_ice);
    carry(pair.callee.core.take_actions(), callee_ice);
  }
  CHECK(counters.dtls_wrong_address == hello.size());
  CHECK(counters.dtls_datagrams >= hello.size());
  CHECK(counters.dtls_refused == 0);
  CHECK(counters.srtp_packets >= 20);
  CHECK(pair.caller.core.state() == CallState::transfer);

  caller_ice.session->close();
  callee_ice.session->close();
  caller_ice.session.reset();
  callee_ice.session.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("MEDIA-PROFILE webrtc: a data call to a browser is refused before gathering, a ring from one declined") {
  Caller caller(caller_config(TransferMode::pipe, true));
  caller.core.logged_in(caller.now);
  caller.take();
  proto::MessageBuilder prepared(proto::MessageClass::success, sig::method::call, caller.node.next_id());
  prepared.add_string(sig::attr::call_id, "c-1");
  prepared.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
  caller.core.prepare_answered(&caller.node.add(std::move(prepared)), {}, caller.now);
  auto actions = caller.take();
  CHECK(all_of_type<call::StartIce>(actions).empty());
  CHECK(caller.exit() == exit_refused);
  CHECK(printed(actions).find("only phone calls") != std::string::npos);

  CallCoreConfig config = callee_config(false);
  config.auto_accept_from = {"*"};
  Callee callee(config);
  proto::MessageBuilder ring(proto::MessageClass::request, sig::method::ring, callee.node.next_id());
  ring.add_string(sig::attr::call_id, "c-9");
  ring.add_string(sig::attr::caller_id, "alice");
  ring.add_string(sig::attr::ice_description, "v=0");
  ring.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
  callee.core.ring(callee.node.add(std::move(ring)), callee.now);
  auto callee_actions = callee.core.take_actions();
  auto replies = all_of_type<call::ReplyRing>(callee_actions);
  REQUIRE(replies.size() == 1);
  CHECK(proto::decode(replies[0].message)->message.message_class == proto::MessageClass::error);
  // `listen` says why it declined (a LAN terminal's user sees no caller's message otherwise).
  CHECK(printed(callee_actions).find("declined a call from alice: the other party is a browser") != std::string::npos);
}

}  // namespace tsunagu::terminal
