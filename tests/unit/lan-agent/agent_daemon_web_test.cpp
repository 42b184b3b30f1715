// AgentDaemon on a real uv loop and a real table, without a node: events the
// hook spooled are replayed at start, and the status page, its JSON and
// /metrics (reached through start_web's handler, as the HTTPS server will call
// it) show them.
#include "lan-agent/agent_daemon.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "allocation/lease_event_codec.hpp"
#include "lan-agent/hook_spool.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempDir;

namespace {

constexpr char kToken[] = "daemon-test-token-0123456789";

web::HttpRequest get_with_token(std::string path) {
  web::HttpRequest request;
  request.method = "GET";
  request.path = request.target = std::move(path);
  request.headers.entries.emplace_back("authorization", std::string("Bearer ") + kToken);
  return request;
}

}  // namespace

TEST_CASE("agent daemon: spooled hook events show on the status page, in its JSON and in /metrics (issue 14)") {
  TempDir dir;
  std::string spool = dir.path() + "/spool";
  REQUIRE(prepare_spool_directory(spool, ::getegid()).has_value());
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto event = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", now + 3600, now);
  event.hostname = "ext-4106";
  Bytes records;
  REQUIRE(alloc::encode_lease_event(event, records).has_value());
  REQUIRE(append_to_spool(spool, records).has_value());

  std::string token_file = dir.write("web.token", std::string(kToken) + "\n");
  REQUIRE(::chmod(token_file.c_str(), 0600) == 0);
  std::string config_text = "[agent]\nname = \"acme\"\ndata_directory = \"" + dir.path() + "/table\"\n" +
                            "[table]\nhostname_rule = \"ext-{ext}\"\n" + "[hook]\nsocket = \"" + dir.path() +
                            "/hook.sock\"\nspool_directory = \"" + spool + "\"\n" +
                            "[web]\nlisten = \"127.0.0.1:8444\"\ntoken_file = \"" + token_file + "\"\n";
  AgentConfig config = parse_agent_config(config_text, dir.path() + "/agent.toml");

  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    auto started = AgentDaemon::start(&loop, config);
    REQUIRE(started.has_value());
    auto& daemon = **started;

    std::string listen;
    AgentDaemon::WebHandler handler;
    auto web = daemon.start_web([&](const std::string& address, AgentDaemon::WebHandler h) -> Expected<void, std::string> {
      listen = address;
      handler = std::move(h);
      return {};
    });
    REQUIRE(web.has_value());
    CHECK(listen == "127.0.0.1:8444");
    REQUIRE(handler);

    auto page = handler(get_with_token("/"));
    CHECK(page.status == 200);
    CHECK(page.body.find("10.99.0.68") != std::string::npos);
    CHECK(page.body.find("4106") != std::string::npos);  // bound by the hostname rule

    auto status = handler(get_with_token("/api/status"));
    REQUIRE(status.status == 200);
    auto json = nlohmann::json::parse(status.body);
    CHECK(json["node_link"]["configured"] == false);
    REQUIRE(json["recent_events"].size() == 1);
    CHECK(json["recent_events"][0]["path"] == "spool");
    CHECK(json["recent_events"][0]["hostname"] == "ext-4106");
    CHECK(json["spool"]["files"] == 0);  // replayed and truncated

    auto metrics = handler(get_with_token("/metrics"));
    REQUIRE(metrics.status == 200);
    CHECK(metrics.body.find("tsunagu_agent_hook_events_total{source=\"dnsmasq\",path=\"spool\"} 1\n") !=
          std::string::npos);
    CHECK(metrics.body.find("tsunagu_agent_leases 1\n") != std::string::npos);
    CHECK(metrics.body.find("tsunagu_agent_bindings 1\n") != std::string::npos);
    CHECK(metrics.body == daemon.metrics_text());

    web::HttpRequest anonymous;
    anonymous.method = "GET";
    anonymous.path = anonymous.target = "/api/status";
    CHECK(handler(anonymous).status == 401);

    bool done = false;
    daemon.shutdown([&] { done = true; });
    for (int i = 0; i < 1000 && !done; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(done);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("agent daemon: start_web refuses a token file others can read, and starts nothing without listen") {
  TempDir dir;
  std::string token_file = dir.write("web.token", std::string(kToken) + "\n");
  REQUIRE(::chmod(token_file.c_str(), 0644) == 0);
  std::string base = "[agent]\ndata_directory = \"" + dir.path() + "/table\"\n[hook]\nsocket = \"" + dir.path() +
                     "/hook.sock\"\nspool_directory = \"" + dir.path() + "/spool\"\n[sync]\non_start = false\n";
  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  for (bool with_listen : {true, false}) {
    std::string text = base + (with_listen ? "[web]\nlisten = \"127.0.0.1:8444\"\ntoken_file = \"" + token_file + "\"\n" : "");
    auto started = AgentDaemon::start(&loop, parse_agent_config(text, dir.path() + "/agent.toml"));
    REQUIRE(started.has_value());
    bool called = false;
    auto web = (*started)->start_web([&](const std::string&, AgentDaemon::WebHandler) -> Expected<void, std::string> {
      called = true;
      return {};
    });
    CHECK_FALSE(called);
    if (with_listen) {
      REQUIRE_FALSE(web.has_value());
      CHECK(web.error().find("readable by other users") != std::string::npos);
    } else {
      CHECK(web.has_value());
    }
    bool done = false;
    (*started)->shutdown([&] { done = true; });
    for (int i = 0; i < 1000 && !done; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(done);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
