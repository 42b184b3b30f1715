// The node's configuration file (TOML), read once at start-up. Relative paths
// are resolved against the directory holding the file.
#pragma once

#include <cstdint>
#include <string>

#include "proto/socket_address.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {

struct NodeConfig {
  std::string directory;  // the deployment directory (holds node.toml)
  proto::SocketAddress listen;       // TLS signalling
  proto::SocketAddress stun_listen;  // UDP STUN Binding
  proto::SocketAddress agent_listen;  // TLS for LAN agents (client certificates required)
  std::string certificate_file;
  std::string private_key_file;
  std::string ca_certificate_file;
  std::string ca_private_key_file;
  std::string database_directory;
  uint64_t map_size = uint64_t{1} << 30;
  std::string log_level = "info";
  NodeSettings settings;
};

// Reads DIR/node.toml. Throws std::runtime_error with a message naming the
// file, the key and what is wrong (start-up only; see STYLE.md on exceptions).
NodeConfig load_node_config(const std::string& directory);

// The commented default written by `tsunagu-rendezvous init`.
std::string default_node_config_text();

}  // namespace tsunagu::rendezvous
