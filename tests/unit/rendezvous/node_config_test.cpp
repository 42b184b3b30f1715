#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "node/deployment.hpp"
#include "node/node_config.hpp"

using namespace tsunagu::rendezvous;

namespace {

// A deployment directory holding only node.toml.
struct ConfigDir {
  std::filesystem::path path;
  ConfigDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-config-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~ConfigDir() { std::filesystem::remove_all(path); }
  void write(const std::string& text) const { std::ofstream(path / "node.toml") << text; }
};

std::string error_of(const std::string& text) {
  ConfigDir dir;
  dir.write(text);
  try {
    load_node_config(dir.path.string());
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the default node.toml loads with the documented defaults") {
  ConfigDir dir;
  dir.write(default_node_config_text());
  NodeConfig config = load_node_config(dir.path.string());
  CHECK(config.listen.port == 7400);
  CHECK(config.agent_listen.port == 7401);
  CHECK(config.stun_listen.port == 3478);
  CHECK(config.settings.consent_timeout_s == 30);
  CHECK(config.settings.forward_timeout_ms == 3000);
  CHECK(config.settings.voicemail_max_message_bytes == 1024 * 1024);
  CHECK(config.certificate_file == (dir.path / "node.crt").string());
}

TEST_CASE("node.toml errors name the file, the key and what is wrong") {
  CHECK(error_of("[node]\nlisen = \"0.0.0.0:7400\"\n").find("node.lisen: unknown setting") != std::string::npos);
  CHECK(error_of("[nodes]\n").find("nodes: unknown section") != std::string::npos);
  CHECK(error_of("listen = 1\n").find("listen: unknown section") != std::string::npos);
  CHECK(error_of("node = 1\n").find("node: must be a section") != std::string::npos);
  CHECK(error_of("[node]\nlisten = \"nowhere\"\n").find("is not an address:port") != std::string::npos);
  CHECK(error_of("[calls]\nconsent_timeout = 0\n").find("calls.consent_timeout: must be between 1 and 600") !=
        std::string::npos);
  CHECK(error_of("[node]\nopen_registration = \"yes\"\n").find("must be true or false") != std::string::npos);
  CHECK(error_of("[turn]\nservers = [\"127.0.0.1:3478\"]\n").find("turn.secret") != std::string::npos);
  CHECK(error_of("[node\n").find("node.toml:1:") != std::string::npos);
}

// Issue 10 item 5: `agent enroll` defaults to how init said the node is reached.
TEST_CASE("node.public_name and node.public_address: written by init, read back, checked") {
  ConfigDir dir;
  dir.write(default_node_config_text("node.example.net", "203.0.113.7"));
  NodeConfig config = load_node_config(dir.path.string());
  CHECK(config.public_name == "node.example.net");
  CHECK(config.public_address == "203.0.113.7");
  dir.write(default_node_config_text());
  CHECK(load_node_config(dir.path.string()).public_name.empty());
  CHECK(error_of("[node]\npublic_address = \"node.example.net\"\n").find("node.public_address") != std::string::npos);
  CHECK(error_of("[node]\npublic_name = \"a b\"\n").find("node.public_name") != std::string::npos);
}

TEST_CASE("agent enroll: the bundle dials the public address on the agent port and checks the public name") {
  struct Case {
    const char *node, *server_name, *public_name, *public_address, *want_node, *want_server_name;
  };
  for (const Case& c : {
           Case{"", "", "node.example.net", "203.0.113.7", "203.0.113.7:7401", "node.example.net"},
           Case{"", "", "node.example.net", "", "node.example.net:7401", "node.example.net"},
           Case{"", "", "", "2001:db8::7", "[2001:db8::7]:7401", "2001:db8::7"},
           Case{"gw.example:9000", "other.example", "node.example.net", "203.0.113.7", "gw.example:9000",
                "other.example"},  // the options win
       }) {
    CAPTURE(c.want_node);
    auto target = agent_dial_target(c.node, c.server_name, c.public_name, c.public_address, 7401);
    REQUIRE(target.has_value());
    CHECK(target->node_address == c.want_node);
    CHECK(target->server_name == c.want_server_name);
  }
}

TEST_CASE("agent enroll: without a public name or address it refuses and names --node and --server-name") {
  auto target = agent_dial_target("", "", "", "", 7401);
  REQUIRE_FALSE(target.has_value());
  CHECK(target.error().find("--node") != std::string::npos);
  CHECK(target.error().find("--server-name") != std::string::npos);
  target = agent_dial_target("127.0.0.1:7401", "", "", "", 7401);
  REQUIRE_FALSE(target.has_value());
  CHECK(target.error().find("--node") == std::string::npos);
  CHECK(target.error().find("--server-name") != std::string::npos);
}

TEST_CASE("node.toml [accounts] and [directory]: documented defaults, set values and bounds (issue 11)") {
  auto identity_settings = [](const std::string& text) {
    ConfigDir dir;
    dir.write(text);
    NodeSettings s = load_node_config(dir.path.string()).settings;
    return std::vector<uint32_t>{s.removed_id_quarantine_days, s.account_check_interval_ms, s.directory_scan_burst,
                                 s.directory_scan_interval_ms};
  };
  CHECK(identity_settings(default_node_config_text()) == std::vector<uint32_t>{30, 1000, 20, 2000});
  CHECK(identity_settings("[accounts]\nremoved_id_quarantine_days = 0\ncheck_interval_ms = 250\n"
                          "[directory]\nscan_burst = 5\nscan_interval_ms = 10000\n") ==
        std::vector<uint32_t>{0, 250, 5, 10000});
  CHECK(error_of("[accounts]\ncheck_interval_ms = 10\n").find("accounts.check_interval_ms") != std::string::npos);
  CHECK(error_of("[directory]\nscan_burst = 0\n").find("directory.scan_burst") != std::string::npos);
}

TEST_CASE("the default node.toml carries the issue 11 limits with their documented defaults") {
  ConfigDir dir;
  dir.write(default_node_config_text());
  const NodeSettings s = load_node_config(dir.path.string()).settings;
  CHECK(s.login_limits.per_pair_burst == 5);
  CHECK(s.login_limits.per_pair_refill_ms == 60'000);
  CHECK(s.login_limits.per_user_burst == 100);
  CHECK(s.login_limits.per_user_refill_ms == 36'000);
  CHECK(s.login_limits.register_burst == 5);
  CHECK(s.max_password_jobs == 32);
  CHECK(s.max_links == 10'000);
  CHECK(s.max_links_per_account == 8);
  CHECK(s.max_prelogin_links_per_source == 16);
  CHECK(s.idle_timeout_s == 120);
  CHECK(s.voicemail_sender_messages_per_day == 50);
  CHECK(s.voicemail_store_quota_bytes == uint64_t{256} << 20);
  CHECK(s.voicemail_uploads_per_sender == 2);
  CHECK(s.voicemail_upload_max_s == 300);
  CHECK(error_of("[storage]\nmap_size_mb = 100\n[voicemail]\nstore_quota_mb = 80\n").find("at most half") !=
        std::string::npos);
  CHECK(error_of("[limits]\nidle_timeout = 1\n").find("limits.idle_timeout: must be between 5") != std::string::npos);
}

TEST_CASE("node.toml [cards.areas]: prefixes to areas are read, and a bad prefix or area is named") {
  ConfigDir dir;
  dir.write("[cards.areas]\n\"198.51.100.0/24\" = \"kansai\"\n\"2001:db8::/32\" = \"kanto\"\n");
  NodeConfig config = load_node_config(dir.path.string());
  REQUIRE(config.settings.card_areas.size() == 2);
  const std::string* area = config.settings.card_areas.area_of(
      tsunagu::proto::SocketAddress::v4({198, 51, 100, 200}, 1));
  REQUIRE(area != nullptr);
  CHECK(*area == "kansai");
  CHECK(error_of("[cards.areas]\n\"198.51.100.1/24\" = \"kansai\"\n").find("cards.areas.\"198.51.100.1/24\"") !=
        std::string::npos);
  CHECK(error_of("[cards.areas]\n\"198.51.100.0/33\" = \"kansai\"\n").find("length is above 32") !=
        std::string::npos);
  CHECK(error_of("[cards.areas]\n\"198.51.100.0/24\" = 7\n").find("must be an area's code") != std::string::npos);
  CHECK(error_of("[cards]\nareas = \"kansai\"\n").find("cards.areas: must be a table") != std::string::npos);
}
