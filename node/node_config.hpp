// The node's configuration file (TOML), read once at start-up. Relative paths
// are resolved against the directory holding the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/socket_address.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {

struct NodeConfig {
  std::string directory;  // the deployment directory (holds node.toml)
  proto::SocketAddress listen;       // TLS signalling
  proto::SocketAddress stun_listen;  // UDP STUN Binding
  proto::SocketAddress agent_listen;  // TLS for LAN agents (client certificates required)
  // How the node is reached from outside, as `init --name/--ip` recorded it;
  // empty when not configured. `agent enroll` writes them into bundles.
  std::string public_name;     // the DNS name (or address) on the node's certificate
  std::string public_address;  // the IP address agents dial
  std::string certificate_file;
  std::string private_key_file;
  std::string ca_certificate_file;
  std::string ca_private_key_file;
  std::string database_directory;
  uint64_t map_size = uint64_t{1} << 30;
  std::string log_level = "info";
  // The HTTPS listener for the web pages, the JSON API and /metrics
  // (docs/web.md); nullopt when web.listen is "" or absent.
  std::optional<proto::SocketAddress> web_listen;
  uint32_t web_session_idle_s = 1800;   // a web session with no request for this long ends
  uint32_t web_session_max_s = 43200;   // and every web session this long after its login
  size_t web_max_connections = 1000;
  size_t web_max_body_kb = 1024;        // request bodies (a voicemail upload is the largest)
  std::string web_metrics_token_file;   // empty: /metrics answers loopback clients only
  // Cluster mode: accounts and logins in this PostgreSQL (a libpq conninfo,
  // [cluster] postgres or `run --pg`); empty: the node's own LMDB.
  std::string postgres;
  size_t postgres_account_cache = 100'000;  // [cluster] account_cache: accounts kept on the node; 0: none
  // [cluster] (docs/cluster.md): Redis servers ("IP:PORT"; one, or seeds of a
  // Redis Cluster) for presence and the bus between nodes, and this node's
  // name there; no servers: the embedded single node.
  std::vector<std::string> cluster_redis;
  std::string cluster_node_name;
  // Redis AUTH ([cluster] redis_user, redis_password_file: a file of the node's
  // own, mode 0600 or 0640, read at start); no file: no AUTH.
  std::string cluster_redis_user;
  std::string cluster_redis_password_file;
  NodeSettings settings;
};

// A DNS name or IP address fit for node.public_name (and for a TOML string).
bool valid_host_name(std::string_view name);

// Reads DIR/node.toml. Throws std::runtime_error with a message naming the
// file, the key and what is wrong (start-up only; see STYLE.md on exceptions).
NodeConfig load_node_config(const std::string& directory);

// The commented default written by `tsunagu-rendezvous init`, with
// node.public_name / node.public_address when given.
std::string default_node_config_text(const std::string& public_name = {}, const std::string& public_address = {});

}  // namespace tsunagu::rendezvous
