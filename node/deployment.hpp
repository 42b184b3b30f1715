// `tsunagu-rendezvous init`: a deployment directory with a private CA, the
// node's certificate and key, a default node.toml and the database directory.
#pragma once

#include <string>
#include <vector>

#include "base/expected.hpp"
#include "base/files.hpp"

namespace tsunagu::rendezvous {

struct DeploymentRequest {
  std::string directory;
  std::vector<std::string> dns_names{"localhost"};
  std::vector<std::string> ip_addresses{"127.0.0.1", "::1"};
  bool overwrite = false;
  // Recorded in node.toml as node.public_name / node.public_address when set
  // (init's first --name and first --ip); `agent enroll` defaults to them.
  std::string public_name;
  std::string public_address;
};

// Returns a one-paragraph summary for the operator, or what went wrong.
Expected<std::string, std::string> create_deployment(const DeploymentRequest& request);

// `init --renew-certificate`: a new node key and certificate from the
// deployment CA, for the given names (none given: the names and addresses of
// the current certificate), each written to a temporary file and renamed over
// the old one, so a running node picks them up on its next reload (SIGHUP).
struct CertificateRenewal {
  std::string certificate_file;  // node.toml's tls.certificate
  std::string private_key_file;  // tls.private_key
  std::string ca_certificate_file;
  std::string ca_private_key_file;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};
Expected<std::string, std::string> renew_node_certificate(const CertificateRenewal& renewal);

struct AgentBundleRequest {
  std::string ca_certificate_file;
  std::string ca_private_key_file;
  std::string name;  // becomes the certificate's common name
  std::vector<std::string> domains;
  std::vector<std::string> number_prefixes;
  std::string output_directory;
  std::string node_address;  // host:port of the node's agent listener, as the agent will dial it
  std::string server_name;   // name the node's certificate carries
};

struct AgentDialTarget {
  std::string node_address;  // host:port
  std::string server_name;
};

// What an enrolled agent dials and which name it checks: the --node and
// --server-name options when given, else the deployment's public address (or
// name) with the agent port, and its public name (or address). An error naming
// both options when the deployment records neither.
Expected<AgentDialTarget, std::string> agent_dial_target(const std::string& node_option,
                                                         const std::string& server_name_option,
                                                         const std::string& public_name,
                                                         const std::string& public_address, uint16_t agent_port);

// Issues the agent's client certificate from the deployment CA and writes
// agent.crt, agent.key, ca.crt and a starting agent.toml into the directory.
Expected<std::string, std::string> write_agent_bundle(const AgentBundleRequest& request);

// Why enrolling AGENT_NAME into DIRECTORY would overwrite another agent's
// bundle (an agent.crt naming another agent, or an agent.key without an
// agent.crt of AGENT_NAME's), else empty: that agent's key is gone for good.
// Re-enrolling the same agent into its own bundle stays allowed.
std::string other_agent_bundle_in(const std::string& directory, const std::string& agent_name);

// Why DIRECTORY already holds a deployment (the first of its files found),
// else empty; `init` without --force refuses it.
std::string existing_deployment_in(const std::string& directory);

}  // namespace tsunagu::rendezvous
