// What every `tsunagu` subcommand shares: the exit codes, the node options
// (--node, --ca, --user, --password-file, --server-name) and turning them into
// NodeClientOptions, and JSON string quoting for --json output.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proto/profile_change.hpp"
#include "terminal/node_client.hpp"

namespace CLI {
class App;  // CLI11, which only the .cpp needs: the call core takes its exit codes from here too
}

namespace tsunagu::terminal {

// Exit codes (the --help footer lists them).
inline constexpr int exit_network = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_unknown_user = 3;
inline constexpr int exit_offline = 4;
inline constexpr int exit_auth = 5;
inline constexpr int exit_rate_limited = 6;
inline constexpr int exit_refused = 7;
inline constexpr int exit_call_busy = 8;
inline constexpr int exit_call_declined = 9;
inline constexpr int exit_call_no_answer = 10;
inline constexpr int exit_call_failed = 11;
inline constexpr int exit_interrupted = 130;  // SIGINT, the shell's 128 + 2

int exit_for_failure(ClientFailure failure);

std::string env_or(const char* name, std::string fallback);

// The node options of a subcommand, with their environment defaults.
struct NodeArgs {
  std::string node = env_or("TSUNAGU_NODE", "");
  std::string ca = env_or("TSUNAGU_CA", "");
  std::string user = env_or("TSUNAGU_USER", "");
  std::optional<std::string> password_file;
  std::string server_name;
  bool json = false;

  void add_to(CLI::App* command, bool with_json = false);
  // The options checked and the password read; nullopt after printing why
  // (exit_code is then set to exit_usage).
  // user_optional: no user ID is no error (a card call through a connection
  // agent needs no login); the options then have authenticate = false.
  std::optional<NodeClientOptions> prepare(int& exit_code, bool user_optional = false) const;
};

// Logs in on a query link, runs `work` once logged in, and returns the exit
// code it set (or the link's failure's).
int run_query(NodeClientOptions options, const std::function<void(NodeClient&, int&)>& work);

using proto::json_string;

}  // namespace tsunagu::terminal
