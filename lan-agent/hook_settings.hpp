// agent.toml's [hook] section: what the hook program needs on every call
// (dnsmasq starts it once per lease event, so it reads this section alone,
// without validating the rest of the agent's configuration) and what the agent
// serves the hook socket with. Errors are thrown (ConfigError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/toml_reader.hpp"

namespace tsunagu::lanagent {

inline constexpr char kDefaultConfigPath[] = "/etc/tsunagu/agent.toml";
inline constexpr size_t kMaxConfigBytes = 1 << 20;

struct HookSettings {
  std::string socket = "/run/tsunagu/agent-hook.sock";
  std::string spool_directory = "/var/spool/tsunagu";
  std::vector<std::string> allowed_users;  // root is always allowed
  std::vector<std::string> allowed_groups = {"_kea", "dhcpd"};
  int64_t timeout_ms = 1000;  // how long the hook waits for the agent's ack
  std::string chain;          // an admin's previous script, called with the same args/env
};

// The [hook] keys of a parsed agent.toml; relative paths are taken from base_dir.
HookSettings read_hook_settings(const TomlReader& reader, const std::string& base_dir);

// Reads `file` (at most kMaxConfigBytes) and returns its [hook] settings; other
// sections are parsed as TOML but not checked.
HookSettings load_hook_settings(const std::string& file);

// The directory relative paths in `file` are taken from.
std::string config_base_directory(const std::string& file);

}  // namespace tsunagu::lanagent
