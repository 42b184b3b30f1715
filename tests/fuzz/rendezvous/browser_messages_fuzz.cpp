// Fuzz target: what a dialing page sends on its event socket
// (rendezvous/browser_signalling.cpp, rendezvous/web_calls.cpp). Input: lines,
// each one text message from the page, fed to a real node (NodeCore, LMDB in
// a temporary directory) where alice's page takes calls and bob is online on
// a terminal link. Every line parse_browser_message() accepts must satisfy
// its limits (an SDP that parses, a candidate that parses, a 32-hex call
// ID); every event the page hears must be a JSON object with a "type"; and the
// node must keep serving: a lookup after the lines still answers 200.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "rendezvous/browser_signalling.hpp"
#include "tests/unit/rendezvous/web_api_harness.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_parsed(std::string_view line) {
  auto parsed = parse_browser_message(line);
  if (!parsed) {
    require(!parsed.error().reason.empty());
    return;
  }
  const BrowserMessage& m = *parsed;
  require(m.sdp.size() <= max_browser_sdp && m.candidate.size() <= max_browser_candidate);
  if (!m.sdp.empty()) require(!sdp_refusal(m.sdp).has_value());
  require(m.call_id.empty() || m.call_id.size() == 32);
  if (m.kind == BrowserMessage::Kind::call_path) require(m.path.size() <= 11 && m.path.find('/') != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  WebNode node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "bob's password");
  node.terminal_login(1, "bob", "bob's password");
  Browser browser;
  require(node.log_in(browser, "alice", "correct horse").response.status == 200);
  auto session = node.session_of(browser);
  require(session.has_value());
  node.api().subscribe(*session, [](std::string event) {
    auto parsed = nlohmann::json::parse(event, nullptr, false);
    require(parsed.is_object() && parsed.contains("type"));
  }, node.now());
  node.api().socket_message(*session, R"({"type":"available"})", node.now());
  node.pump();

  size_t start = 0;
  int lines = 0;
  while (start <= input.size() && lines++ < 64) {
    size_t end = std::min(input.find('\n', start), input.size());
    std::string_view line = input.substr(start, end - start);
    start = end + 1;
    check_parsed(line);
    node.api().socket_message(*session, line, node.now());
    node.pump();
    // Whatever the page asked, bob's terminal may answer a ring it got: keep the core busy both ways.
    for (const auto& action : node.take_terminal_actions()) {
      auto decoded = proto::decode(action.message);
      if (!decoded || decoded->message.method != proto::method::ring ||
          decoded->message.message_class != proto::MessageClass::request)
        continue;
      auto answer = proto::MessageBuilder::response_to(decoded->message, proto::MessageClass::success);
      answer.add_u32(proto::attr::protocol_version, proto::protocol_version);
      answer.add_string(proto::attr::ice_description, line);
      node.terminal_send(action.link, answer.finish());
    }
  }
  node.api().socket_closed(*session, node.now());
  node.pump();
  require(node.request(browser, "GET", "/api/lookup?id=bob").response.status == 200);
  return 0;
}
