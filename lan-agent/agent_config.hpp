// agent.toml: the LAN agent's configuration (docs/lan-agent.md has the
// reference). `tsunagu-rendezvous agent enroll` writes the [node] and [agent]
// keys; everything else has a default. Unknown keys are errors. Relative paths
// are taken from the directory of the file. Errors are thrown (ConfigError):
// configuration is read only at start-up.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "allocation/client_ref.hpp"
#include "allocation/lease_event.hpp"
#include "base/expected.hpp"
#include "base/toml_reader.hpp"
#include "lan-agent/edge_policy.hpp"
#include "lan-agent/hook_settings.hpp"

namespace tsunagu::lanagent {

// Thrown with the file, the key and what is wrong.
using ConfigError = tsunagu::ConfigFileError;

struct NodeSettings {
  std::string address;      // "HOST:PORT"
  std::string server_name;  // the name the node's certificate carries; default: HOST
  // Other nodes of the same cluster, tried in turn when the link is lost or a connect fails
  // (transport/peer_list.hpp): address and the name its certificate must carry (server_name
  // when given, else the entry's own host).
  std::vector<std::pair<std::string, std::string>> other_nodes;
  std::string ca_certificate, certificate, private_key;  // absolute paths after loading
  int64_t heartbeat_interval_s = 10;
  int64_t request_timeout_s = 10;
  int64_t reconnect_min_ms = 500;
  int64_t reconnect_max_ms = 60'000;
  int64_t refused_retry_s = 300;  // after 403 (not enrolled) or 426 (version)
};

struct TableSettings {
  std::optional<std::string> hostname_rule;  // e.g. "ext-{ext}"; none: admin bindings only
  int64_t history_depth = 16;
  int64_t assumed_lease_seconds = 86400;
  int64_t tombstone_retention_s = 7 * 86400;
  int64_t map_size_mib = 1024;
  // The table commits to the page cache only (it is derived from the lease
  // files: docs/security.md); the agent writes it to the disk this often.
  int64_t flush_interval_ms = 1000;
  // table.pins: admin bindings written at start ("4106=02:00:00:41:06:01"): what
  // `tsunagu-lan-agent bind` does, kept in the config.
  std::vector<std::pair<std::string, alloc::ClientRef>> pins;
};

struct SyncSource {
  alloc::ServerKind kind = alloc::ServerKind::dnsmasq;
  std::string path;
};

// Rings for EXT@DOMAIN from the node are passed to the LAN terminal at the
// address its lease gave it, on this TLS port (docs/calls.md).
struct CallSettings {
  bool enabled = true;
  uint16_t terminal_port = 7480;
  int64_t connect_timeout_ms = 5000;  // connect + TLS handshake with the terminal
  // Extensions with call waiting: a second call rings while they are in one
  // (the terminal's `listen --lan` holds one to answer the other). Any other
  // extension in a call, or one of these in two, is answered busy (486).
  std::vector<std::string> call_waiting;
};

// The status page and /metrics over HTTPS (docs/lan-agent.md, "Status page
// and metrics"), for the LAN side only: `listen` must name the gateway's LAN
// address (a wildcard is refused: it would serve the WAN side too). Off unless
// `listen` is given.
struct WebSettings {
  std::string listen;      // "ADDRESS:PORT" (an IP literal); empty: no web server
  std::string token_file;  // the admin token (absolute path after loading); required with listen
};
inline constexpr size_t kMaxWebTokenBytes = 4096;
inline constexpr size_t kMinWebTokenBytes = 16;

struct AgentConfig {
  std::string file;  // where it was read from
  std::optional<NodeSettings> node;  // absent: no node link (LAN-only mode)
  std::string name;
  std::vector<std::string> domains;
  std::vector<std::string> number_prefixes;
  std::string data_directory = "/var/lib/tsunagu/agent";
  std::string log_level = "info";
  TableSettings table;
  HookSettings hook;
  std::vector<SyncSource> sync_sources;  // synced on start (when sync_on_start) and on SIGHUP
  bool sync_on_start = true;
  EdgePolicyConfig policy;
  CallSettings calls;
  WebSettings web;
};

// The admin token of [web] token_file: the file's first line, without
// surrounding whitespace; an error when it is unreadable, longer than
// kMaxWebTokenBytes, shorter than kMinWebTokenBytes, or readable by others
// than its owner and group (mode & 0007).
Expected<std::string, std::string> read_web_token(const std::string& path);

// "dnsmasq:/path", "isc:/path", "kea:/path" (relative paths against base_dir).
std::optional<SyncSource> parse_sync_source(std::string_view text, const std::string& base_dir, std::string& error);
std::string_view sync_kind_name(alloc::ServerKind kind);

// Parses the text of an agent.toml; `file` names it in errors and relative
// paths are resolved against its directory.
AgentConfig parse_agent_config(std::string_view text, const std::string& file);
AgentConfig load_agent_config(const std::string& file);
// The checks `run` needs on top of parsing: with a [node] section, a name and
// at least one domain or number prefix.
void require_runnable(const AgentConfig& config);

bool valid_agent_name(std::string_view name);
bool valid_domain(std::string_view domain);
bool valid_number_prefix(std::string_view prefix);
// An extension as `bind` and `table.pins` take it: a user ID's local part
// (1-64 of a-z 0-9 . _ - +, a letter, digit or '+' first), what callers dial.
bool valid_extension(std::string_view extension);

}  // namespace tsunagu::lanagent
