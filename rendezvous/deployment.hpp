// `tsunagu-rendezvous init`: a deployment directory with a private CA, the
// node's certificate and key, a default node.toml and the database directory.
#pragma once

#include <string>
#include <vector>

#include "base/expected.hpp"

namespace tsunagu::rendezvous {

struct DeploymentRequest {
  std::string directory;
  std::vector<std::string> dns_names{"localhost"};
  std::vector<std::string> ip_addresses{"127.0.0.1", "::1"};
  bool overwrite = false;
};

// Returns a one-paragraph summary for the operator, or what went wrong.
Expected<std::string, std::string> create_deployment(const DeploymentRequest& request);

// Writes `content` to `path` atomically (temp file, fsync, rename) with `mode`.
Expected<void, std::string> write_file_atomically(const std::string& path, const std::string& content, unsigned mode);

}  // namespace tsunagu::rendezvous
