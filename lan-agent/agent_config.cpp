#include "lan-agent/agent_config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <toml++/toml.h>

#include "allocation/allocation_table.hpp"
#include "allocation/hostname_rule.hpp"
#include "base/log.hpp"
#include "proto/signalling.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::lanagent {
namespace {

const KnownSettings kKnownKeys = {
    {"node",
     {"address", "other_addresses", "server_name", "ca_certificate", "certificate", "private_key", "heartbeat_interval",
      "request_timeout", "reconnect_min_ms", "reconnect_max_ms", "refused_retry"}},
    {"agent", {"name", "domains", "number_prefixes", "data_directory", "log_level"}},
    {"table", {"hostname_rule", "history_depth", "assumed_lease_seconds", "tombstone_retention", "map_size_mib", "flush_interval_ms", "pins"}},
    {"hook", {"socket", "spool_directory", "allowed_users", "allowed_groups", "timeout_ms", "chain"}},
    {"sync", {"lease_files", "on_start"}},
    {"policy", {"default", "rule", "show_lease_addresses"}},
    {"calls", {"enabled", "terminal_port", "connect_timeout_ms", "call_waiting"}},
    {"web", {"listen", "token_file"}},
};
const std::vector<std::string_view> kRuleKeys = {"extensions", "allow_callers", "deny_callers"};

using Reader = TomlReader;

bool all_of_chars(std::string_view s, std::string_view allowed_extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || allowed_extra.find(c) != std::string_view::npos;
  });
}

std::string host_of(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

bool valid_node_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) return false;
  std::string port = address.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  return std::stoi(port) > 0 && std::stoi(port) < 65536;
}

void read_policy(const Reader& reader, const toml::table& root, AgentConfig& config) {
  std::string def = reader.text("policy.default", "allow");
  if (def != "allow" && def != "deny") reader.fail("policy.default", "must be \"allow\" or \"deny\"");
  config.policy.default_allow = def == "allow";
  config.policy.show_lease_addresses = reader.boolean("policy.show_lease_addresses", false);
  auto rules_node = root.at_path("policy.rule");
  if (!rules_node) return;
  const auto* rules = rules_node.as_array();
  if (rules == nullptr) reader.fail("policy.rule", "must be [[policy.rule]] tables");
  if (rules->size() > kMaxPolicyRules) reader.fail("policy.rule", "more than 1024 rules");
  for (size_t i = 0; i < rules->size(); ++i) {
    std::string where = "policy.rule[" + std::to_string(i + 1) + "]";
    const auto* table = (*rules)[i].as_table();
    if (table == nullptr) reader.fail(where, "must be a table ([[policy.rule]])");
    for (const auto& [key, value] : *table)
      if (std::find(kRuleKeys.begin(), kRuleKeys.end(), key.str()) == kRuleKeys.end())
        reader.fail(where + "." + std::string(key.str()), "unknown setting (known: extensions, allow_callers, deny_callers)");
    PolicyRule rule;
    auto list = [&](std::string_view key, std::vector<std::string>& out) {
      const toml::node* node = table->get(key);
      if (node == nullptr) return;
      std::string full = where + "." + std::string(key);
      out = reader.strings_of(node, full, kMaxPolicyPatterns);
      for (const auto& pattern : out)
        if (auto problem = check_pattern(pattern)) reader.fail(full, "\"" + pattern + "\": " + *problem);
    };
    list("extensions", rule.extensions);
    list("allow_callers", rule.allow_callers);
    list("deny_callers", rule.deny_callers);
    if (rule.extensions.empty()) reader.fail(where + ".extensions", "required (use [\"*\"] for every extension)");
    config.policy.rules.push_back(std::move(rule));
  }
}

}  // namespace

bool valid_agent_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && all_of_chars(name, ".-_") && name.front() != '.' && name.front() != '-';
}

bool valid_domain(std::string_view domain) {
  return !domain.empty() && domain.size() <= 63 && all_of_chars(domain, ".-") && domain.front() != '.' &&
         domain.front() != '-';
}

bool valid_extension(std::string_view extension) {
  return !extension.empty() && extension.size() <= alloc::kMaxExtensionLength &&
         extension.find('@') == std::string_view::npos && proto::valid_user_id(extension);
}

bool valid_number_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 32) return false;
  if (prefix[0] != '+' && !(prefix[0] >= '0' && prefix[0] <= '9')) return false;
  size_t digits = 0;
  for (char c : prefix.substr(1)) {
    if (c >= '0' && c <= '9') ++digits;
    else if (c != '-' && c != '.') return false;
  }
  return digits > 0 || (prefix[0] >= '0' && prefix[0] <= '9');
}

std::string_view sync_kind_name(alloc::ServerKind kind) {
  switch (kind) {
    case alloc::ServerKind::dnsmasq: return "dnsmasq";
    case alloc::ServerKind::isc_dhcpd: return "isc";
    case alloc::ServerKind::kea: return "kea";
    default: return "unknown";
  }
}

std::optional<SyncSource> parse_sync_source(std::string_view text, const std::string& base_dir, std::string& error) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) {
    error = "\"" + std::string(text) + "\" is not KIND:PATH (dnsmasq:PATH, isc:PATH or kea:PATH)";
    return std::nullopt;
  }
  std::string_view kind = text.substr(0, colon);
  SyncSource source;
  if (kind == "dnsmasq") source.kind = alloc::ServerKind::dnsmasq;
  else if (kind == "isc") source.kind = alloc::ServerKind::isc_dhcpd;
  else if (kind == "kea") source.kind = alloc::ServerKind::kea;
  else {
    error = "unknown lease file kind \"" + std::string(kind) + "\" (dnsmasq, isc or kea)";
    return std::nullopt;
  }
  source.path = resolve_config_path(base_dir, std::string(text.substr(colon + 1)));
  return source;
}

AgentConfig parse_agent_config(std::string_view text, const std::string& file) {
  if (text.size() > kMaxConfigBytes) throw ConfigError(file + ": larger than 1 MiB");
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    throw ConfigError(file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
                      std::string(error.description()));
  }
  Reader reader(root, file);
  reader.reject_unknown(kKnownKeys);
  std::string base_dir = config_base_directory(file);

  AgentConfig config;
  config.file = file;
  if (root.contains("node")) {
    NodeSettings node;
    node.address = reader.text("node.address", "", 300);
    if (node.address.empty()) reader.fail("node.address", "required: the node's agent port as \"HOST:PORT\"");
    if (!valid_node_address(node.address)) reader.fail("node.address", "\"" + node.address + "\" is not HOST:PORT");
    node.server_name = reader.text("node.server_name", host_of(node.address), 253);
    bool named = root["node"]["server_name"].is_value();
    for (const auto& other : reader.strings("node.other_addresses", {}, 16)) {
      if (!valid_node_address(other)) reader.fail("node.other_addresses", "\"" + other + "\" is not HOST:PORT");
      node.other_nodes.emplace_back(other, named ? node.server_name : host_of(other));
    }
    for (auto [key, out] : {std::pair{"node.ca_certificate", &node.ca_certificate},
                            std::pair{"node.certificate", &node.certificate},
                            std::pair{"node.private_key", &node.private_key}}) {
      std::string value = reader.text(key, "");
      if (value.empty()) reader.fail(key, "required (the enrolment bundle has it)");
      *out = resolve_config_path(base_dir, value);
    }
    node.heartbeat_interval_s = reader.integer("node.heartbeat_interval", 10, 1, 3600);
    node.request_timeout_s = reader.integer("node.request_timeout", 10, 1, 600);
    node.reconnect_min_ms = reader.integer("node.reconnect_min_ms", 500, 10, 600'000);
    node.reconnect_max_ms = reader.integer("node.reconnect_max_ms", 60'000, node.reconnect_min_ms, 3'600'000);
    node.refused_retry_s = reader.integer("node.refused_retry", 300, 1, 86400);
    config.node = std::move(node);
  }
  config.name = reader.text("agent.name", "");
  if (!config.name.empty() && !valid_agent_name(config.name))
    reader.fail("agent.name", "\"" + config.name + "\": 1-64 of a-z 0-9 . - _ (the certificate's common name)");
  config.domains = reader.strings("agent.domains", {}, 64);
  for (const auto& d : config.domains)
    if (!valid_domain(d)) reader.fail("agent.domains", "\"" + d + "\": 1-63 of a-z 0-9 . -");
  config.number_prefixes = reader.strings("agent.number_prefixes", {}, 64);
  for (const auto& p : config.number_prefixes)
    if (!valid_number_prefix(p))
      reader.fail("agent.number_prefixes", "\"" + p + "\": '+' or a digit, then digits, '-' or '.' (at most 32)");
  config.data_directory = resolve_config_path(base_dir, reader.text("agent.data_directory", config.data_directory));
  config.log_level = reader.text("agent.log_level", "info");
  if (!log::parse_level(config.log_level)) reader.fail("agent.log_level", "debug, info, warn or error");

  if (reader.has("table.hostname_rule")) {
    std::string pattern = reader.text("table.hostname_rule", "", 200);
    if (!pattern.empty()) {
      auto rule = alloc::HostnameRule::parse(pattern);
      if (!rule) reader.fail("table.hostname_rule", "\"" + pattern + "\": " + rule.error().detail);
      config.table.hostname_rule = pattern;
    }
  }
  config.table.history_depth = reader.integer("table.history_depth", 16, 0, 1024);
  config.table.assumed_lease_seconds = reader.integer("table.assumed_lease_seconds", 86400, 60, 365 * 86400);
  config.table.tombstone_retention_s = reader.integer("table.tombstone_retention", 7 * 86400, 60, 365 * 86400);
  config.table.map_size_mib = reader.integer("table.map_size_mib", 1024, 1, 1 << 20);
  config.table.flush_interval_ms = reader.integer("table.flush_interval_ms", 1000, 10, 60'000);
  for (const std::string& pin : reader.strings("table.pins", {}, 4096)) {
    size_t eq = pin.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pin.size() || eq > alloc::kMaxExtensionLength)
      reader.fail("table.pins", "\"" + pin + "\": not EXT=MAC (or EXT=CLIENT-ID)");
    if (!valid_extension(pin.substr(0, eq)))
      reader.fail("table.pins", "\"" + pin + "\": the extension is not 1-64 of a-z 0-9 . _ - + (as `bind` takes it)");
    auto client = alloc::ClientRef::parse(pin.substr(eq + 1));
    if (!client) reader.fail("table.pins", "\"" + pin + "\": " + client.error().detail);
    config.table.pins.emplace_back(pin.substr(0, eq), std::move(*client));
  }

  config.hook = read_hook_settings(reader, base_dir);

  for (const auto& entry : reader.strings("sync.lease_files", {}, 16)) {
    std::string error;
    auto source = parse_sync_source(entry, base_dir, error);
    if (!source) reader.fail("sync.lease_files", error);
    config.sync_sources.push_back(*source);
  }
  config.sync_on_start = reader.boolean("sync.on_start", true);
  config.calls.enabled = reader.boolean("calls.enabled", true);
  config.calls.terminal_port = static_cast<uint16_t>(reader.integer("calls.terminal_port", 7480, 1, 65535));
  config.calls.connect_timeout_ms = reader.integer("calls.connect_timeout_ms", 5000, 100, 60'000);
  config.calls.call_waiting = reader.strings("calls.call_waiting", {}, 4096);
  read_policy(reader, root, config);

  config.web.listen = reader.text("web.listen", "", 64);
  if (!config.web.listen.empty()) {
    auto address = proto::SocketAddress::parse(config.web.listen);
    if (!address || address->port == 0)
      reader.fail("web.listen", "\"" + config.web.listen + "\" is not ADDRESS:PORT with an IP address");
    bool wildcard = std::all_of(address->ip.begin(), address->ip.begin() + static_cast<long>(address->ip_size()),
                                [](uint8_t b) { return b == 0; });
    if (wildcard)
      reader.fail("web.listen", "give the gateway's LAN address: a wildcard would serve the status page on the WAN side too");
    std::string token = reader.text("web.token_file", "");
    if (token.empty()) reader.fail("web.token_file", "required with web.listen (a file holding the admin token)");
    config.web.token_file = resolve_config_path(base_dir, token);
  } else if (reader.has("web.token_file")) {
    config.web.token_file = resolve_config_path(base_dir, reader.text("web.token_file", ""));
  }
  return config;
}

Expected<std::string, std::string> read_web_token(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return Unexpected(path + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return Unexpected(path + ": not a regular file");
  if ((info.st_mode & 0007) != 0) return Unexpected(path + ": readable by other users (chmod 0640 or 0600)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unexpected(path + ": cannot read (" + std::string(std::strerror(errno)) + ")");
  std::string text(kMaxWebTokenBytes + 2, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (auto newline = text.find('\n'); newline != std::string::npos) text.resize(newline);
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!text.empty() && space(text.back())) text.pop_back();
  size_t start = 0;
  while (start < text.size() && space(text[start])) ++start;
  text.erase(0, start);
  if (text.size() > kMaxWebTokenBytes) return Unexpected(path + ": the token is longer than 4096 bytes");
  if (text.size() < kMinWebTokenBytes)
    return Unexpected(path + ": the token is shorter than 16 characters (openssl rand -hex 32 makes one)");
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
      return Unexpected(path + ": the token must be printable ASCII without spaces");
  return text;
}

AgentConfig load_agent_config(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file + ": cannot read (" + std::string(std::strerror(errno)) + ")");
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) throw ConfigError(file + ": larger than 1 MiB");
  return parse_agent_config(text, file);
}

void require_runnable(const AgentConfig& config) {
  if (!config.node) return;
  if (config.name.empty()) throw ConfigError(config.file + ": agent.name: required with a [node] section");
  if (config.domains.empty() && config.number_prefixes.empty())
    throw ConfigError(config.file + ": agent.domains / agent.number_prefixes: the agent must announce at least one");
}

}  // namespace tsunagu::lanagent
