#include "lan-agent/agent_web.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <string>

#include "allocation/field_normalisation.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/hook_event_log.hpp"
#include "lan-agent/hook_spool.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::TempDir;

namespace {

constexpr std::string_view kToken = "0123456789abcdef0123456789abcdef";
constexpr int64_t kNow = 1'800'000'000;
constexpr char kHostile[] = "<script>alert(\"x\")</script>&'";

web::HttpRequest get(std::string path, std::vector<std::pair<std::string, std::string>> headers = {}) {
  web::HttpRequest request;
  request.method = "GET";
  request.target = path;
  request.path = std::move(path);
  for (auto& [name, value] : headers) request.headers.entries.emplace_back(std::move(name), std::move(value));
  return request;
}

const std::string* header(const web::HttpResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers.entries)
    if (key == name) return &value;
  return nullptr;
}

alloc::LeaseRecord lease(const std::string& mac, const std::string& ip, const std::string& hostname) {
  alloc::LeaseRecord r;
  r.key = "4|m=" + mac;
  r.source = alloc::ServerKind::kea;
  r.address = *alloc::parse_ip_address(ip);
  r.mac = mac;
  r.hostname = hostname;
  r.expires = kNow + 3600;
  r.live_until = kNow + 3600;
  r.reported_at = kNow - 10;
  return r;
}

AgentStatusInput sample_input() {
  AgentStatusInput in;
  in.now = kNow;
  in.agent_name = "acme";
  alloc::ExtensionBinding binding;
  binding.extension = "4106";
  binding.client = *alloc::ClientRef::mac("02:00:00:41:06:01");
  in.bindings.push_back(binding);
  alloc::ExtensionBinding idle;
  idle.extension = "4107";
  idle.client = *alloc::ClientRef::mac("02:00:00:41:07:01");
  in.bindings.push_back(idle);
  in.leases.push_back(lease("02:00:00:41:06:01", "192.168.1.50", "ext-4106"));
  in.leases.push_back(lease("02:00:00:99:99:99", "192.168.1.77", kHostile));
  alloc::BindingConflict conflict;
  conflict.extension = "4106";
  conflict.claimant = *alloc::ClientRef::mac("02:00:00:99:99:99");
  conflict.hostname = kHostile;
  conflict.address = *alloc::parse_ip_address("192.168.1.77");
  conflict.first_seen = conflict.last_seen = kNow - 5;
  conflict.attempts = 2;
  in.conflicts.push_back(conflict);
  HookEventLog log;
  alloc::LeaseEvent event = testing::grant("02:00:00:99:99:99", "192.168.1.77", kNow + 3600, kNow - 5);
  event.hostname = kHostile;
  log.record(event, HookPath::socket, kNow - 5);
  in.recent_events.assign(log.recent().begin(), log.recent().end());
  in.metrics.live_leases = 2;
  in.metrics.node_configured = true;
  in.metrics.node_linked = true;
  in.metrics.spool = {1, 300};
  count_hook_events(log, in.metrics);
  return in;
}

web::HttpRequest with_bearer(std::string path) {
  return get(std::move(path), {{"authorization", "Bearer " + std::string(kToken)}});
}

}  // namespace

TEST_CASE("agent web: every page but the stylesheet and script needs the admin token") {
  auto in = sample_input();
  for (const char* path : {"/", "/api/status", "/metrics"}) {
    CAPTURE(path);
    auto none = agent_web_handle(get(path), in, kToken);
    CHECK(none.status == 401);
    REQUIRE(header(none, "www-authenticate") != nullptr);
    auto wrong = agent_web_handle(get(path, {{"authorization", "Bearer 0123456789abcdef0123456789abcdee"}}), in, kToken);
    CHECK(wrong.status == 401);
    auto prefix = agent_web_handle(get(path, {{"authorization", "Bearer 0123456789abcdef"}}), in, kToken);
    CHECK(prefix.status == 401);
    auto cookie_wrong = agent_web_handle(get(path, {{"cookie", "tsunagu_agent_token=nope"}}), in, kToken);
    CHECK(cookie_wrong.status == 401);
    CHECK(agent_web_handle(with_bearer(path), in, kToken).status == 200);
    auto cookie = agent_web_handle(
        get(path, {{"cookie", "other=1; tsunagu_agent_token=" + std::string(kToken) + "; x=y"}}), in, kToken);
    CHECK(cookie.status == 200);
    // No token configured: nobody gets in, not even with an empty one.
    CHECK(agent_web_handle(get(path, {{"authorization", "Bearer "}}), in, "").status == 401);
  }
  CHECK(agent_web_handle(get("/style.css"), in, kToken).status == 200);
  auto script = agent_web_handle(get("/agent.js"), in, kToken);
  CHECK(script.status == 200);
  // The script writes what the JSON says as text, never as markup.
  CHECK(script.body.find("textContent") != std::string::npos);
  CHECK(script.body.find("innerHTML") == std::string::npos);
  CHECK(agent_web_handle(with_bearer("/nothing"), in, kToken).status == 404);
}

TEST_CASE("agent web: ?token= and POST /login set an HttpOnly, Secure, SameSite=Strict cookie and redirect") {
  auto in = sample_input();
  auto request = get("/");
  request.query.emplace_back("token", std::string(kToken));
  auto login = agent_web_handle(request, in, kToken);
  CHECK(login.status == 303);
  REQUIRE(header(login, "location") != nullptr);
  CHECK(*header(login, "location") == "/");
  REQUIRE(header(login, "set-cookie") != nullptr);
  const std::string& cookie = *header(login, "set-cookie");
  CHECK(cookie.find("tsunagu_agent_token=" + std::string(kToken)) == 0);
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("Secure") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);

  auto bad = get("/");
  bad.query.emplace_back("token", "guess-guess-guess-guess");
  auto refused = agent_web_handle(bad, in, kToken);
  CHECK(refused.status == 401);
  CHECK(header(refused, "set-cookie") == nullptr);

  web::HttpRequest post;
  post.method = "POST";
  post.path = post.target = "/login";
  post.body = "token=" + std::string(kToken);
  CHECK(agent_web_handle(post, in, kToken).status == 303);
  post.body = "token=wrong";
  CHECK(agent_web_handle(post, in, kToken).status == 401);
  post.body = std::string(kMaxLoginBodyBytes + 1, 'a');
  CHECK(agent_web_handle(post, in, kToken).status == 413);
  CHECK(agent_web_handle(get("/login"), in, kToken).status == 405);
}

TEST_CASE("agent web: a hostile client hostname is escaped on the page, never markup") {
  auto page = agent_web_handle(with_bearer("/"), sample_input(), kToken);
  REQUIRE(page.status == 200);
  CHECK(page.body.find("<script>alert") == std::string::npos);
  CHECK(page.body.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;") != std::string::npos);
  // The page's only script is the file from 'self'.
  CHECK(page.body.find("<script src=\"/agent.js\" defer></script>") != std::string::npos);
  CHECK(page.body.find("<style") == std::string::npos);
  CHECK(page.body.find(" style=") == std::string::npos);
  CHECK(page.body.find("192.168.1.50") != std::string::npos);
  CHECK(page.body.find("no live lease") != std::string::npos);  // 4107 is bound but has no lease
  CHECK(page.body.find("<body data-poll=\"1\">") != std::string::npos);
  CHECK(page.body.find("<tbody id=\"allocation-rows\">") != std::string::npos);
}

TEST_CASE("agent web: every answer carries Content-Security-Policy default-src 'self'") {
  auto in = sample_input();
  for (const auto& request : {with_bearer("/"), with_bearer("/api/status"), with_bearer("/metrics"), get("/"),
                              get("/style.css"), with_bearer("/missing")}) {
    CAPTURE(request.path);
    auto response = agent_web_handle(request, in, kToken);
    REQUIRE(header(response, "content-security-policy") != nullptr);
    CHECK(header(response, "content-security-policy")->find("default-src 'self'") == 0);
    REQUIRE(header(response, "x-content-type-options") != nullptr);
  }
}

TEST_CASE("agent web: /api/status is the page as JSON") {
  auto response = agent_web_handle(with_bearer("/api/status"), sample_input(), kToken);
  REQUIRE(response.status == 200);
  REQUIRE(header(response, "content-type") != nullptr);
  CHECK(*header(response, "content-type") == "application/json");
  auto status = nlohmann::json::parse(response.body);
  CHECK(status["agent"] == "acme");
  CHECK(status["node_link"]["configured"] == true);
  CHECK(status["node_link"]["up"] == true);
  CHECK(status["spool"]["files"] == 1);
  CHECK(status["spool"]["bytes"] == 300);
  REQUIRE(status["allocations"].is_array());
  REQUIRE(status["allocations"].size() == 3);
  auto first = status["allocations"][0];
  CHECK(first["extension"] == "4106");
  CHECK(first["client"] == "02:00:00:41:06:01");
  CHECK(first["address"] == "192.168.1.50");
  CHECK(first["expires"] == kNow + 3600);
  CHECK(first["conflicts"] == 1);
  CHECK(status["allocations"][1]["extension"] == "4107");
  CHECK(status["allocations"][1]["address"].is_null());
  CHECK(status["allocations"][2]["extension"].is_null());  // the unbound client
  CHECK(status["allocations"][2]["hostname"] == kHostile);  // JSON carries it as text
  REQUIRE(status["conflicts"].size() == 1);
  CHECK(status["conflicts"][0]["attempts"] == 2);
  REQUIRE(status["recent_events"].size() == 1);
  CHECK(status["recent_events"][0]["source"] == "dnsmasq");
  CHECK(status["recent_events"][0]["action"] == "grant");
  CHECK(status["recent_events"][0]["path"] == "socket");
}

TEST_CASE("agent web: a hostname that is not UTF-8 does not break the JSON") {
  auto in = sample_input();
  in.leases[1].hostname = std::string("bad\xff\xfe");
  auto response = agent_web_handle(with_bearer("/api/status"), in, kToken);
  REQUIRE(response.status == 200);
  auto status = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(status.is_discarded());
  CHECK(status["allocations"][2]["hostname"].get<std::string>().starts_with("bad"));
}

TEST_CASE("agent web: /metrics is the Prometheus text with hook events by server kind") {
  auto response = agent_web_handle(with_bearer("/metrics"), sample_input(), kToken);
  REQUIRE(response.status == 200);
  CHECK(*header(response, "content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(response.body.find("tsunagu_agent_hook_events_total{source=\"dnsmasq\",path=\"socket\"} 1\n") !=
        std::string::npos);
  CHECK(response.body.find("tsunagu_agent_node_link_up 1\n") != std::string::npos);
  CHECK(response.body.find("tsunagu_agent_leases 2\n") != std::string::npos);
  CHECK(response.body.find("tsunagu_agent_spool_bytes 300\n") != std::string::npos);
  CHECK(response.body.find("192.168") == std::string::npos);
  CHECK(response.body.find("02:00:00") == std::string::npos);
}

TEST_CASE("agent web: tokens compare equal only when equal") {
  CHECK(tokens_equal("abc", "abc"));
  CHECK_FALSE(tokens_equal("abd", "abc"));
  CHECK_FALSE(tokens_equal("ab", "abc"));
  CHECK_FALSE(tokens_equal("abcd", "abc"));
  CHECK_FALSE(tokens_equal("", ""));
}

TEST_CASE("hook event log: keeps the last 100 events, newest first, and counts every one by kind") {
  HookEventLog log;
  for (int i = 0; i < 130; ++i) {
    auto e = testing::grant("02:00:00:00:00:01", "192.168.1." + std::to_string(i % 250 + 1), kNow + 60, kNow + i);
    e.source = i % 2 ? alloc::ServerKind::kea : alloc::ServerKind::isc_dhcpd;
    log.record(e, i < 100 ? HookPath::socket : HookPath::spool, kNow + i);
  }
  REQUIRE(log.recent().size() == kRecentHookEvents);
  CHECK(log.recent().front().received_at == kNow + 129);
  CHECK(log.recent().back().received_at == kNow + 30);
  CHECK(log.count(HookPath::socket, alloc::ServerKind::kea) == 50);
  CHECK(log.count(HookPath::spool, alloc::ServerKind::isc_dhcpd) == 15);
  CHECK(log.count(HookPath::socket, alloc::ServerKind::dnsmasq) == 0);
}

TEST_CASE("spool depth counts the non-empty hook spools and their bytes") {
  TempDir dir;
  dir.write("hook-0.spool", std::string(100, 'x'));
  dir.write("hook-107.spool", std::string(20, 'x'));
  dir.write("hook-5.spool", "");
  dir.write("notes.txt", "not a spool");
  auto depth = spool_depth(dir.path());
  CHECK(depth.files == 2);
  CHECK(depth.bytes == 120);
  CHECK(spool_depth(dir.path() + "/missing").files == 0);
}

TEST_CASE("config: [web] listen needs a LAN address and a token file; the token file is checked") {
  TempDir dir;
  std::string file = dir.path() + "/agent.toml";
  auto c = parse_agent_config("[web]\nlisten = \"192.168.1.1:8444\"\ntoken_file = \"web.token\"\n", file);
  CHECK(c.web.listen == "192.168.1.1:8444");
  CHECK(c.web.token_file == dir.path() + "/web.token");
  CHECK(parse_agent_config("", file).web.listen.empty());  // off unless given

  auto error_of = [&](const std::string& text) {
    try {
      parse_agent_config(text, file);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error_of("[web]\nlisten = \"0.0.0.0:8444\"\ntoken_file = \"t\"\n").find("wildcard") != std::string::npos);
  CHECK(error_of("[web]\nlisten = \"[::]:8444\"\ntoken_file = \"t\"\n").find("wildcard") != std::string::npos);
  CHECK(error_of("[web]\nlisten = \"gateway:8444\"\ntoken_file = \"t\"\n").find("web.listen") != std::string::npos);
  CHECK(error_of("[web]\nlisten = \"192.168.1.1:8444\"\n").find("web.token_file: required") != std::string::npos);
  CHECK(error_of("[web]\nport = 1\n").find("unknown setting") != std::string::npos);

  std::string token = dir.write("web.token", "  " + std::string(kToken) + "\n");
  ::chmod(token.c_str(), 0600);
  auto read = read_web_token(token);
  REQUIRE(read.has_value());
  CHECK(*read == kToken);
  ::chmod(token.c_str(), 0644);
  REQUIRE_FALSE(read_web_token(token).has_value());
  CHECK(read_web_token(token).error().find("readable by other users") != std::string::npos);
  std::string short_token = dir.write("short.token", "abc\n");
  ::chmod(short_token.c_str(), 0600);
  CHECK(read_web_token(short_token).error().find("shorter") != std::string::npos);
  CHECK_FALSE(read_web_token(dir.path() + "/missing").has_value());
}

TEST_CASE("agent web: a stored hostname with a bidi override or a control shows as text, on the page and in JSON") {
  // Tables written before the hook decoder refused such names may hold them.
  auto in = sample_input();
  const std::string rlo = "\u202E" "enohp" "\x1b[2J";
  in.leases[1].hostname = rlo;
  in.conflicts[0].hostname = rlo;
  in.recent_events[0].event.hostname = rlo;
  auto page = agent_web_handle(with_bearer("/"), in, kToken);
  REQUIRE(page.status == 200);
  CHECK(page.body.find("\u202E") == std::string::npos);
  CHECK(page.body.find('\x1b') == std::string::npos);
  CHECK(page.body.find("\uFFFD" "enohp") != std::string::npos);
  auto response = agent_web_handle(with_bearer("/api/status"), in, kToken);
  auto status = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  REQUIRE_FALSE(status.is_discarded());
  CHECK(status["allocations"][2]["hostname"] == "\uFFFD" "enohp" "\uFFFD[2J");
  CHECK(status["conflicts"][0]["hostname"] == "\uFFFD" "enohp" "\uFFFD[2J");
  CHECK(status["recent_events"][0]["hostname"] == "\uFFFD" "enohp" "\uFFFD[2J");
}
