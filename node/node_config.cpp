#include "node/node_config.hpp"

#include "base/toml_reader.hpp"
#include "node/cluster_relay.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>
#include <stdexcept>

namespace tsunagu::rendezvous {
namespace {

// An "address:port" setting.
proto::SocketAddress address_setting(const TomlReader& reader, std::string_view key, std::string fallback) {
  std::string value = reader.text(key, std::move(fallback));
  auto parsed = proto::SocketAddress::parse(value);
  if (!parsed) reader.fail(key, "\"" + value + "\" is not an address:port (e.g. 0.0.0.0:7400 or [::]:7400)");
  return *parsed;
}

const KnownSettings kNodeSettings = {
    {"node",
     {"listen", "stun_listen", "agent_listen", "log_level", "open_registration", "software", "public_name",
      "public_address"}},
    {"tls", {"certificate", "private_key", "ca_certificate", "ca_private_key"}},
    {"storage", {"directory", "map_size_mb"}},
    {"presence", {"keepalive_interval", "keepalive_misses", "login_timeout"}},
    {"limits",
     {"login_failures_per_user_and_source", "login_refill_seconds_per_user_and_source", "login_failures_per_user",
      "login_refill_seconds_per_user", "login_failures_per_source", "login_refill_seconds_per_source",
      "registrations_per_source", "registration_refill_seconds_per_source", "password_checks_in_flight",
      "max_links", "max_links_per_account", "max_prelogin_links_per_source", "idle_timeout", "max_bad_messages",
      "forward_timeout_ms"}},
    {"passwords", {"scrypt_log2_n", "scram_iterations", "resume_token_ttl"}},
    {"calls",
     {"consent_timeout", "max_ringing_per_user", "max_ringing_per_source", "max_early_candidates",
      "max_early_candidate_bytes"}},
    {"turn", {"secret", "servers", "lifetime", "stun_server"}},
    {"voicemail",
     {"max_message_kb", "mailbox_quota_kb", "max_messages", "retention_days", "pending_uploads_mb",
      "sender_messages_per_day", "sender_mb_per_day", "domain_quota_mb", "store_quota_mb", "uploads_per_sender",
      "upload_idle_timeout", "upload_max_seconds"}},
    {"accounts", {"removed_id_quarantine_days", "check_interval_ms"}},
    {"directory", {"scan_burst", "scan_interval_ms"}},
    {"cards", {"debit_interval_s", "max_calls_per_card", "areas", "connection_agent", "holder_password_required"}},
    {"web", {"listen", "session_idle_timeout", "session_max_seconds", "max_connections", "max_body_kb", "metrics_token_file"}},
    {"cluster", {"postgres", "redis", "node_name", "redis_user", "redis_password_file", "account_cache"}},
};

// [cards.areas]: "PREFIX" = "AREA" lines (rendezvous/area_prefixes.hpp).
void read_card_areas(const TomlReader& reader, const toml::table& root, AreaPrefixes& areas) {
  const toml::node* node = root.at_path("cards.areas").node();
  if (node == nullptr) return;
  const toml::table* table = node->as_table();
  if (table == nullptr) reader.fail("cards.areas", "must be a table of \"PREFIX\" = \"AREA\"");
  for (const auto& entry_pair : *table) {
    std::string key = "cards.areas.\"" + std::string(entry_pair.first.str()) + "\"";
    const auto* area = entry_pair.second.as_string();
    if (area == nullptr) reader.fail(key, "must be an area's code (a string)");
    const std::string& code = area->get();
    if (code.empty() || code.size() > 255 ||
        !std::all_of(code.begin(), code.end(), [](char c) { return c >= ' ' && c <= '~'; }))
      reader.fail(key, "the area's code must be 1 to 255 printable ASCII characters, as on the card");
    if (auto error = areas.add(entry_pair.first.str(), code)) reader.fail(key, *error);
  }
}

}  // namespace

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == ':';
  });
}

NodeConfig load_node_config(const std::string& directory) {
  std::string file = (std::filesystem::path(directory) / "node.toml").string();
  // An admin command run as the wrong user meets EACCES here first: say so in
  // words, not as std::filesystem's "filesystem error: status: ...".
  auto unreadable = [&](const std::string& why) {
    return std::runtime_error(file + ": cannot read it: " + why +
                              " (run the command as the deployment's owner, e.g. `runuser -u tsunagu -- ...`)");
  };
  std::error_code ec;
  auto status = std::filesystem::status(file, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw unreadable(ec.message());
  if (!std::filesystem::exists(status))
    throw std::runtime_error(file + ": not found (create a deployment with `tsunagu-rendezvous init " + directory + "`)");
  if (!std::filesystem::is_regular_file(status)) throw std::runtime_error(file + ": not a regular file");
  if (::access(file.c_str(), R_OK) != 0) throw unreadable(std::strerror(errno));
  auto size = std::filesystem::file_size(file, ec);
  if (ec) throw unreadable(ec.message());
  if (size > 1 << 20) throw std::runtime_error(file + ": larger than 1 MiB");
  toml::table root;
  try {
    root = toml::parse_file(file);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    throw std::runtime_error(file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " +
                             std::string(error.description()));
  }
  TomlReader reader(root, file);
  reader.reject_unknown(kNodeSettings);
  NodeConfig config;
  config.directory = directory;
  config.listen = address_setting(reader, "node.listen", "0.0.0.0:7400");
  config.stun_listen = address_setting(reader, "node.stun_listen", "0.0.0.0:3478");
  config.agent_listen = address_setting(reader, "node.agent_listen", "0.0.0.0:7401");
  config.public_name = reader.text("node.public_name", "", 253);
  if (!config.public_name.empty() && !valid_host_name(config.public_name))
    reader.fail("node.public_name", "must be a DNS name or IP address (a-z A-Z 0-9 . - :)");
  config.public_address = reader.text("node.public_address", "", 64);
  if (!config.public_address.empty() && !proto::SocketAddress::parse(config.public_address, 0))
    reader.fail("node.public_address", "\"" + config.public_address + "\" is not an IP address (e.g. 203.0.113.7)");
  // `init` writes listen = "0.0.0.0:8443"; a node.toml from before the web
  // listener existed has no [web] and gets no new public port on an upgrade.
  if (std::string web = reader.text("web.listen", ""); !web.empty())
    config.web_listen = address_setting(reader, "web.listen", "");
  config.web_session_idle_s = static_cast<uint32_t>(reader.integer("web.session_idle_timeout", 1800, 60, 86400));
  config.web_session_max_s = static_cast<uint32_t>(reader.integer("web.session_max_seconds", 43200, 300, 2592000));
  config.web_max_connections = static_cast<size_t>(reader.integer("web.max_connections", 1000, 1, 100000));
  config.web_max_body_kb = static_cast<size_t>(reader.integer("web.max_body_kb", 1024, 1, 65536));
  if (std::string token_file = reader.text("web.metrics_token_file", ""); !token_file.empty())
    config.web_metrics_token_file = resolve_config_path(directory, token_file);
  // Cluster mode's accounts (docs/cluster.md): a libpq conninfo; empty: LMDB.
  config.postgres = reader.text("cluster.postgres", "", 4096);
  // Accounts kept on the node in cluster mode (docs/cluster.md, "the account cache"); 0: none.
  config.postgres_account_cache = static_cast<size_t>(reader.integer("cluster.account_cache", 100000, 0, 10000000));
  config.log_level = reader.text("node.log_level", "info");
  if (config.log_level != "debug" && config.log_level != "info" && config.log_level != "warn" &&
      config.log_level != "error")
    reader.fail("node.log_level", "must be debug, info, warn or error");
  config.settings.open_registration = reader.boolean("node.open_registration", false);
  config.settings.software = reader.text("node.software", "tsunagu-rendezvous/0.1");
  config.certificate_file = resolve_config_path(directory, reader.text("tls.certificate", "node.crt"));
  config.private_key_file = resolve_config_path(directory, reader.text("tls.private_key", "node.key"));
  config.ca_certificate_file = resolve_config_path(directory, reader.text("tls.ca_certificate", "ca.crt"));
  config.ca_private_key_file = resolve_config_path(directory, reader.text("tls.ca_private_key", "ca.key"));
  config.database_directory = resolve_config_path(directory, reader.text("storage.directory", "db"));
  config.map_size = static_cast<uint64_t>(reader.integer("storage.map_size_mb", 1024, 1, 1 << 20)) << 20;
  auto& s = config.settings;
  s.keepalive_interval_s = static_cast<uint32_t>(reader.integer("presence.keepalive_interval", 15, 1, 3600));
  s.keepalive_misses = static_cast<uint32_t>(reader.integer("presence.keepalive_misses", 3, 1, 100));
  s.login_timeout_s = static_cast<uint32_t>(reader.integer("presence.login_timeout", 20, 1, 3600));
  // A token bucket: "KEY_BURST failures back to back, then one more per KEY_REFILL seconds".
  auto bucket = [&](std::string_view burst_key, int64_t burst, std::string_view refill_key, int64_t refill_s,
                    unsigned& burst_out, uint64_t& refill_ms_out) {
    burst_out = static_cast<unsigned>(reader.integer(burst_key, burst, 1, 100000));
    refill_ms_out = static_cast<uint64_t>(reader.integer(refill_key, refill_s, 1, 86400)) * 1000;
  };
  auto& limits = s.login_limits;
  bucket("limits.login_failures_per_user_and_source", 5, "limits.login_refill_seconds_per_user_and_source", 60,
         limits.per_pair_burst, limits.per_pair_refill_ms);
  bucket("limits.login_failures_per_user", 100, "limits.login_refill_seconds_per_user", 36, limits.per_user_burst,
         limits.per_user_refill_ms);
  bucket("limits.login_failures_per_source", 20, "limits.login_refill_seconds_per_source", 6,
         limits.per_source_burst, limits.per_source_refill_ms);
  bucket("limits.registrations_per_source", 5, "limits.registration_refill_seconds_per_source", 60,
         limits.register_burst, limits.register_refill_ms);
  s.max_password_jobs = static_cast<size_t>(reader.integer("limits.password_checks_in_flight", 32, 1, 100000));
  s.max_links = static_cast<size_t>(reader.integer("limits.max_links", 10000, 16, 10'000'000));
  s.max_links_per_account = static_cast<size_t>(reader.integer("limits.max_links_per_account", 8, 1, 10000));
  s.max_prelogin_links_per_source =
      static_cast<size_t>(reader.integer("limits.max_prelogin_links_per_source", 16, 1, 100000));
  s.idle_timeout_s = static_cast<uint32_t>(reader.integer("limits.idle_timeout", 120, 5, 86400));
  s.max_bad_messages = static_cast<uint32_t>(reader.integer("limits.max_bad_messages", 8, 1, 1000));
  s.forward_timeout_ms = static_cast<uint32_t>(reader.integer("limits.forward_timeout_ms", 3000, 50, 60000));
  s.consent_timeout_s = static_cast<uint32_t>(reader.integer("calls.consent_timeout", 30, 1, 600));
  s.max_ringing_per_user = static_cast<size_t>(reader.integer("calls.max_ringing_per_user", 4, 1, 1000));
  s.max_ringing_per_source = static_cast<size_t>(reader.integer("calls.max_ringing_per_source", 16, 1, 100000));
  s.max_early_candidates = static_cast<uint32_t>(reader.integer("calls.max_early_candidates", 32, 1, 10000));
  s.max_early_candidate_bytes =
      static_cast<uint32_t>(reader.integer("calls.max_early_candidate_bytes", 8192, 512, 1 << 20));
  s.turn_secret = reader.text("turn.secret", "");
  s.turn_lifetime_s = static_cast<uint32_t>(reader.integer("turn.lifetime", 3600, 60, 86400));
  if (auto servers = root.at_path("turn.servers")) {
    const auto* list = servers.as_array();
    if (list == nullptr) reader.fail("turn.servers", "must be a list of \"address:port\" strings");
    for (const auto& item : *list) {
      auto text = item.value<std::string>();
      auto parsed = text ? proto::SocketAddress::parse(*text) : std::nullopt;
      if (!parsed) reader.fail("turn.servers", "each entry must be \"address:port\"");
      s.turn_servers.push_back(*parsed);
    }
  }
  if (!s.turn_servers.empty() && s.turn_secret.empty())
    reader.fail("turn.secret", "must be set when turn.servers is (coturn's static-auth-secret)");
  if (root.at_path("turn.stun_server")) s.stun_server = address_setting(reader, "turn.stun_server", "");
  s.voicemail_max_message_bytes =
      static_cast<uint64_t>(reader.integer("voicemail.max_message_kb", 1024, 1, 256 * 1024)) * 1024;
  s.voicemail_quota_bytes = static_cast<uint64_t>(reader.integer("voicemail.mailbox_quota_kb", 8192, 1, 16 << 20)) * 1024;
  s.voicemail_max_messages = static_cast<uint32_t>(reader.integer("voicemail.max_messages", 100, 1, 100000));
  s.voicemail_retention_days = static_cast<uint32_t>(reader.integer("voicemail.retention_days", 30, 1, 3650));
  s.voicemail_pending_bytes =
      static_cast<uint64_t>(reader.integer("voicemail.pending_uploads_mb", 64, 1, 64 * 1024)) << 20;
  s.voicemail_sender_messages_per_day =
      static_cast<uint32_t>(reader.integer("voicemail.sender_messages_per_day", 50, 1, 1'000'000));
  s.voicemail_sender_bytes_per_day =
      static_cast<uint64_t>(reader.integer("voicemail.sender_mb_per_day", 32, 1, 1 << 20)) << 20;
  s.voicemail_domain_quota_bytes =
      static_cast<uint64_t>(reader.integer("voicemail.domain_quota_mb", 64, 1, 1 << 20)) << 20;
  s.voicemail_store_quota_bytes =
      static_cast<uint64_t>(reader.integer("voicemail.store_quota_mb", std::min<int64_t>(256, static_cast<int64_t>(config.map_size >> 21)), 1, 1 << 20)) << 20;
  s.voicemail_uploads_per_sender = static_cast<uint32_t>(reader.integer("voicemail.uploads_per_sender", 2, 1, 1000));
  s.voicemail_upload_idle_s = static_cast<uint32_t>(reader.integer("voicemail.upload_idle_timeout", 30, 1, 3600));
  s.voicemail_upload_max_s = static_cast<uint32_t>(reader.integer("voicemail.upload_max_seconds", 300, 1, 86400));
  if (s.voicemail_store_quota_bytes > config.map_size / 2)
    reader.fail("voicemail.store_quota_mb",
                "must be at most half of storage.map_size_mb, so accounts and logins keep room when voicemail is full");
  if (s.voicemail_max_message_bytes > s.voicemail_quota_bytes)
    reader.fail("voicemail.max_message_kb", "must not exceed voicemail.mailbox_quota_kb");
  if (s.voicemail_max_message_bytes > s.voicemail_pending_bytes)
    reader.fail("voicemail.max_message_kb", "must not exceed voicemail.pending_uploads_mb");
  s.removed_id_quarantine_days =
      static_cast<uint32_t>(reader.integer("accounts.removed_id_quarantine_days", 30, 0, 3650));
  s.account_check_interval_ms = static_cast<uint32_t>(reader.integer("accounts.check_interval_ms", 1000, 100, 60000));
  s.directory_scan_burst = static_cast<uint32_t>(reader.integer("directory.scan_burst", 20, 1, 10000));
  s.directory_scan_interval_ms =
      static_cast<uint32_t>(reader.integer("directory.scan_interval_ms", 2000, 1, 3'600'000));
  s.password_hashing.log2_n = static_cast<unsigned>(reader.integer("passwords.scrypt_log2_n", 15, 14, 20));
  s.card_debit_interval_s = static_cast<uint32_t>(reader.integer("cards.debit_interval_s", 60, 1, 3600));
  s.max_calls_per_card = static_cast<size_t>(reader.integer("cards.max_calls_per_card", 1, 1, 100));
  s.card_connection_agent = reader.boolean("cards.connection_agent", false);
  s.card_holder_password_required = reader.boolean("cards.holder_password_required", false);
  read_card_areas(reader, root, s.card_areas);
  config.cluster_redis = reader.strings("cluster.redis", {}, 64);
  for (const auto& server : config.cluster_redis)
    if (!parse_redis_endpoint(server))
      reader.fail("cluster.redis", "\"" + server + "\" is not IP:PORT (an IP literal: names would be resolved blocking)");
  config.cluster_node_name = reader.text("cluster.node_name", "", cluster::bus_max_node_id_size);
  if (!config.cluster_node_name.empty() && !valid_node_name(config.cluster_node_name))
    reader.fail("cluster.node_name", "must be 1 to 64 of a-z 0-9 - . _");
  if (!config.cluster_redis.empty() && config.cluster_node_name.empty())
    reader.fail("cluster.node_name", "must be set when cluster.redis is (each node's own name)");
  config.cluster_redis_user = reader.text("cluster.redis_user", "", 256);
  if (std::string password_file = reader.text("cluster.redis_password_file", ""); !password_file.empty())
    config.cluster_redis_password_file = resolve_config_path(directory, password_file);
  if (!config.cluster_redis_user.empty() && config.cluster_redis_password_file.empty())
    reader.fail("cluster.redis_user", "needs cluster.redis_password_file (the user's password)");
  s.scram_iterations = static_cast<uint32_t>(reader.integer("passwords.scram_iterations",
                                                            security::scram::default_iterations,
                                                            security::scram::min_iterations,
                                                            security::scram::max_iterations));
  s.resume_token_ttl_s = static_cast<uint32_t>(reader.integer("passwords.resume_token_ttl", s.resume_token_ttl_s, 0,
                                                              30 * 86'400));
  return config;
}

std::string default_node_config_text(const std::string& public_name, const std::string& public_address) {
  std::string public_lines =
      (public_name.empty() ? "# public_name = \"node.example.net\"\n" : "public_name = \"" + public_name + "\"\n") +
      (public_address.empty() ? "# public_address = \"203.0.113.7\"\n"
                              : "public_address = \"" + public_address + "\"\n");
  return R"(# Tsunagu rendezvous node. Relative paths are relative to this file's directory.

[node]
# How agents reach this node from outside (written by `init --name/--ip`):
# `agent enroll` puts public_address (else public_name) and agent_listen's port
# into the bundle's node.address, and public_name (else public_address) into
# node.server_name. Without either, enroll needs --node and --server-name.
)" + public_lines + R"(listen = "0.0.0.0:7400"        # TLS signalling for terminals (LAN agents use agent_listen)
stun_listen = "0.0.0.0:3478"   # UDP STUN Binding service
agent_listen = "0.0.0.0:7401"  # TLS for LAN agents; they present certificates from `agent enroll`
log_level = "info"             # debug, info, warn, error
open_registration = false      # let anyone create an account with `tsunagu register`

[tls]
certificate = "node.crt"
private_key = "node.key"
ca_certificate = "ca.crt"      # the deployment's private CA; terminals trust this
ca_private_key = "ca.key"

[storage]
directory = "db"               # LMDB environment
map_size_mb = 1024

[presence]
keepalive_interval = 15        # seconds between a terminal's keepalives
keepalive_misses = 3           # presence ends after this many silent intervals
login_timeout = 20             # seconds a new link has to log in

[limits]
login_failures_per_user_and_source = 5          # failed logins in a burst, per user ID from one source ...
login_refill_seconds_per_user_and_source = 60   # ... then one more per this many seconds
login_failures_per_source = 20 # the same per source address, across all IDs
login_refill_seconds_per_source = 6
login_failures_per_user = 100  # per user ID from all sources together; holds back only
login_refill_seconds_per_user = 36     # sources that failed for that ID, so the owner still gets in
registrations_per_source = 5   # `register` requests in a burst per source ...
registration_refill_seconds_per_source = 60     # ... then one more per this many seconds
password_checks_in_flight = 32 # logins and registrations being hashed node-wide (503 beyond)
max_links = 10000              # links node-wide (kept below the descriptor limit); beyond: "node full"
max_links_per_account = 8      # links logged in as one account at once (503 beyond)
max_prelogin_links_per_source = 16     # links from one source not logged in yet
idle_timeout = 120             # seconds a link without presence (query link) may stay silent
max_bad_messages = 8           # malformed messages before a link is closed
forward_timeout_ms = 3000      # how long a LAN agent has to answer a forwarded lookup

[passwords]
scram_iterations = 600000      # PBKDF2 iterations of new login credentials; keep >= 600000 in production
resume_token_ttl = 86400       # seconds a login's resumption token stays valid (0: none issued)
scrypt_log2_n = 15             # scrypt cost of card passwords (N = 2^15, r = 8, p = 1)

[calls]
consent_timeout = 30           # seconds a callee has to accept
max_ringing_per_user = 4       # calls one caller may have ringing at once
max_ringing_per_source = 16
max_early_candidates = 32      # trickled candidates relayed before the callee accepts (both ways) ...
max_early_candidate_bytes = 8192       # ... and their bytes; more are dropped

[turn]
# coturn with use-auth-secret: the node mints per-call credentials with this secret.
# secret = "same as coturn's static-auth-secret"
# servers = ["203.0.113.7:3478"]
lifetime = 3600                # seconds the minted credentials stay valid
# stun_server = "203.0.113.7:3478"   # the address terminals use for STUN (this node's stun_listen as seen from outside)

[voicemail]
max_message_kb = 1024          # largest message accepted (refused with 413 above it)
mailbox_quota_kb = 8192        # per mailbox; a message that would pass it is refused with 507
max_messages = 100             # per mailbox
retention_days = 30            # messages older than this are deleted, delivered or not
pending_uploads_mb = 64        # memory for all uploads in progress (503 beyond it)
sender_messages_per_day = 50   # messages one sender may leave per UTC day (429 beyond)
sender_mb_per_day = 32         # and bytes
domain_quota_mb = 64           # all EXT@DOMAIN mailboxes of one domain together (507 beyond)
store_quota_mb = 256           # the whole voicemail store (507 beyond); at most half of storage.map_size_mb
                               # (when absent: 256, or half of the map if that is smaller)
uploads_per_sender = 2         # uploads in progress per sender, across all its links (429 beyond)
upload_idle_timeout = 30       # an upload with no chunk for this many seconds is dropped
upload_max_seconds = 300       # and one not finished this long after it began

[accounts]
removed_id_quarantine_days = 30  # a removed ID cannot be registered again for this long (0: at once)
check_interval_ms = 1000       # how soon a removal or password change (`user remove`/`user passwd`)
                               # ends the account's idle links; any request of theirs is refused at once

[web]
listen = "0.0.0.0:8443"        # HTTPS: the web pages, the JSON API and /metrics (docs/web.md); "" turns it off
session_idle_timeout = 1800    # seconds a web session may go without a request
session_max_seconds = 43200    # a web session ends this long after its login
max_connections = 1000         # HTTPS connections at once; more are refused
max_body_kb = 1024             # largest request body (413 above it)
# metrics_token_file = "metrics.token"  # /metrics then needs "Authorization: Bearer <token>";
                               # without it /metrics answers loopback clients only

[directory]
scan_burst = 20                # directory searches (each reads every account) one account may start at once ...
scan_interval_ms = 2000        # ... then one per this many ms; 429 with RETRY-AFTER beyond

[cards]
debit_interval_s = 60          # a call on an access card pays one "minute" of its route's price per this many seconds
max_calls_per_card = 1         # calls one card may be in at once; one more is refused (in use) and audited
connection_agent = false       # true: place card calls for holders with no account here (the card's agent routes)
holder_password_required = false  # true: a card makes calls only after its holder replaced the printed password
# [cards.areas]                # a terminal without its own area asks the node: the longest prefix holding its address
# "198.51.100.0/24" = "kansai"
# "2001:db8:100::/48" = "kanto"
)";
}

}  // namespace tsunagu::rendezvous
