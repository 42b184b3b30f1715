#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "rendezvous/node_config.hpp"

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
