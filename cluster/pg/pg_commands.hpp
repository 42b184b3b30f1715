// `tsunagu-rendezvous cluster migrate|schema-version`: bring a cluster's
// PostgreSQL database to this binary's schema, or say which version it has.
// Kept apart from node/main.cpp, which only registers and dispatches.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace tsunagu::cluster {

class ClusterCommands {
 public:
  virtual ~ClusterCommands() = default;
  virtual bool parsed() const = 0;
  // Runs the parsed subcommand; returns the exit code (0, or 1 when the
  // database cannot be reached or its schema is newer than this binary's).
  virtual int run() = 0;
};

// Adds `cluster` and its subcommands to `app`.
std::unique_ptr<ClusterCommands> add_cluster_commands(CLI::App& app);

}  // namespace tsunagu::cluster
