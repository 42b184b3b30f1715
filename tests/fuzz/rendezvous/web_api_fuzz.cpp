// Fuzz target: the web API's request handling (rendezvous/web_api.cpp) on a
// real node (NodeCore, LMDB in a temporary directory) with a logged-in
// session. Input: a method line, a request target line, a content type line,
// then the body; the request carries the session's cookie and CSRF token
// (unless the method line ends in '!'). Every request must be answered
// exactly once with a status from the documented set and a JSON body (or a
// voicemail's bytes), and the node must keep serving: a session request
// after it still answers 200.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/unit/rendezvous/web_api_harness.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

struct Fixture {
  WebNode node;
  Browser browser;
  Fixture() {
    node.add_account("alice", "correct horse", /*admin=*/true);
    node.add_account("bob", "bob's password");
    require(node.log_in(browser, "alice", "correct horse").response.status == 200);
    require(!browser.csrf.empty());
  }
};

std::string next_line(std::string_view& input) {
  size_t end = input.find('\n');
  std::string line(input.substr(0, end));
  input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // one node for the run: state carries over, as in a real one
  if (size > 70'000) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string method = next_line(input).substr(0, 16);
  bool with_csrf = !method.ends_with('!');
  if (!with_csrf) method.pop_back();
  std::string target = next_line(input).substr(0, 2048);
  if (!target.starts_with("/api/")) target = "/api/" + target;
  // A logout, a login or an account removal would end the fixture's session: the
  // target keeps its other paths.
  if (target.starts_with("/api/logout") || target.starts_with("/api/login") ||
      target.starts_with("/api/admin/users/alice"))
    return 0;
  std::string content_type = next_line(input).substr(0, 128);
  std::string body(input);
  auto answer = fixture->node.request(fixture->browser, method, target, body, content_type, with_csrf);
  require(answer.answered);
  static const std::set<int> documented{200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 501, 503, 507};
  require(documented.contains(answer.response.status));
  const std::string* type = answer.header("content-type");
  if (answer.response.status != 204) require(type != nullptr);
  if (type != nullptr && *type == "application/json")
    require(!nlohmann::json::parse(answer.response.body, nullptr, false).is_discarded());
  auto session = fixture->node.request(fixture->browser, "GET", "/api/session");
  require(session.response.status == 200);
  return 0;
}
