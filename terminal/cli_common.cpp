#include "terminal/cli_common.hpp"

#include <uv.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "base/password_input.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::terminal {

int exit_for_failure(ClientFailure failure) {
  switch (failure) {
    case ClientFailure::none:
    case ClientFailure::displaced:
    case ClientFailure::logged_out: return 0;
    case ClientFailure::network:
    case ClientFailure::tls: return exit_network;
    case ClientFailure::unauthenticated: return exit_auth;
    case ClientFailure::rate_limited: return exit_rate_limited;
    case ClientFailure::protocol: return exit_refused;
  }
  return exit_network;
}

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

void NodeArgs::add_to(CLI::App* command, bool with_json) {
  command->add_option("--node", node,
                      "Rendezvous node host:port, or several nodes of one cluster host:port,host:port,... tried in "
                      "turn when a link is lost ($TSUNAGU_NODE)");
  command->add_option("--ca", ca, "The deployment's CA certificate file ($TSUNAGU_CA)");
  command->add_option("-u,--user", user, "Your user ID ($TSUNAGU_USER)");
  command->add_option("--password-file", password_file,
                      "Read your password from this file's first line ('-' = stdin); otherwise "
                      "$TSUNAGU_PASSWORD, otherwise a prompt");
  command->add_option("--server-name", server_name,
                      "Name the node's certificate must carry (default: the host of --node)");
  if (with_json) command->add_flag("--json", json, "Print JSON instead of text");
}

std::optional<NodeClientOptions> NodeArgs::prepare(int& exit_code, bool user_optional) const {
  auto missing = [&](const std::string& what) {
    std::cerr << "tsunagu: " << what << "\n";
    exit_code = exit_usage;
    return std::nullopt;
  };
  if (node.empty()) return missing("no node: give --node host:port or set TSUNAGU_NODE");
  if (ca.empty()) return missing("no CA certificate: give --ca FILE or set TSUNAGU_CA");
  if (user.empty() && !user_optional) return missing("no user ID: give --user ID or set TSUNAGU_USER");
  if (!user.empty() && !proto::valid_user_id(user))
    return missing("invalid user ID \"" + user + "\": 1-64 of a-z 0-9 . _ - + then optionally @domain");
  NodeClientOptions options;
  std::string host, error;
  auto nodes = split_node_list(node, error);
  if (!nodes) return missing(error);
  for (const auto& entry : *nodes) {
    auto address = resolve_node_address(entry, host, error);
    if (!address) return missing(error);
    std::string verify_name = server_name.empty() ? host : server_name;
    if (&entry == &nodes->front()) {
      options.node = *address;
      options.verify_name = verify_name;
    } else {
      options.other_nodes.push_back({address->to_string(), verify_name});
    }
  }
  options.ca_file = ca;
  if (user.empty()) {
    options.authenticate = false;
    return options;
  }
  options.user_id = user;
  PasswordSource source;
  source.file = password_file;
  source.prompt = "Password for " + user + ": ";
  auto password = read_password(source, error);
  if (!password) return missing(error);
  options.password = *password;
  return options;
}

// Logs in on a query link, runs `work`, and returns the exit code it set.
int run_query(NodeClientOptions options, const std::function<void(NodeClient&, int&)>& work) {
  options.role = proto::link_role::query;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int exit_code = 0;
  NodeClientEvents events;
  NodeClient* client_ptr = nullptr;
  events.on_logged_in = [&](const LoginInfo&) { work(*client_ptr, exit_code); };
  events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
    if (failure == ClientFailure::none) return;
    std::cerr << "tsunagu: " << detail << std::endl;
    if (exit_code == 0) exit_code = exit_for_failure(failure);
  };
  {
    NodeClient client(&loop, options, events);
    client_ptr = &client;
    if (auto started = client.start(); !started) events.on_stopped(started.error().failure, started.error().detail);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return exit_code;
}

}  // namespace tsunagu::terminal
