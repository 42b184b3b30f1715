#include "node/deployment.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/files.hpp"
#include "node/node_config.hpp"
#include "security/certificates.hpp"

namespace tsunagu::rendezvous {

static std::string toml_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

Expected<AgentDialTarget, std::string> agent_dial_target(const std::string& node_option,
                                                         const std::string& server_name_option,
                                                         const std::string& public_name,
                                                         const std::string& public_address, uint16_t agent_port) {
  AgentDialTarget target{node_option, server_name_option};
  if (target.node_address.empty()) {
    const std::string& host = public_address.empty() ? public_name : public_address;
    if (!host.empty())
      target.node_address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(agent_port);
  }
  if (target.server_name.empty()) target.server_name = public_name.empty() ? public_address : public_name;
  if (target.node_address.empty() || target.server_name.empty())
    return Unexpected(std::string("this deployment records no public name or address (node.public_name / "
                                  "node.public_address in node.toml, written by `init --name N --ip A`): give ") +
                      (target.node_address.empty() ? "--node HOST:PORT (what the agent dials)" : "") +
                      (target.node_address.empty() && target.server_name.empty() ? " and " : "") +
                      (target.server_name.empty() ? "--server-name NAME (the name on the node's certificate)" : ""));
  return target;
}

Expected<std::string, std::string> write_agent_bundle(const AgentBundleRequest& request) {
  namespace fs = std::filesystem;
  auto ca_certificate = read_text_file(request.ca_certificate_file);
  if (!ca_certificate) return Unexpected(ca_certificate.error());
  auto ca_key = read_text_file(request.ca_private_key_file);
  if (!ca_key) return Unexpected(ca_key.error());
  security::KeyAndCertificate ca{*ca_certificate, *ca_key};
  security::CertificateRequest certificate_request;
  certificate_request.common_name = request.name;
  certificate_request.usage = security::CertificateRequest::Usage::client;
  auto issued = security::issue_certificate(ca, certificate_request);
  if (!issued) return Unexpected("issuing the agent certificate: " + issued.error().detail);
  fs::path dir(request.output_directory);
  if (auto made = make_private_directory(dir.string(), 0700); !made) return Unexpected(made.error());
  std::string config = "# Tsunagu LAN agent, enrolled as \"" + request.name +
                       "\". Relative paths are relative to this file's directory.\n\n[agent]\nname = \"" + request.name +
                       "\"\ndomains = " + toml_list(request.domains) + "\nnumber_prefixes = " +
                       toml_list(request.number_prefixes) + "\n\n[node]\naddress = \"" + request.node_address +
                       "\"\nserver_name = \"" + request.server_name +
                       "\"\nca_certificate = \"ca.crt\"\ncertificate = \"agent.crt\"\nprivate_key = \"agent.key\"\n";
  struct Output {
    const char* name;
    const std::string* content;
    unsigned mode;
  };
  for (const Output& out : {Output{"agent.key", &issued->private_key_pem, 0600},
                            Output{"agent.crt", &issued->certificate_pem, 0644}, Output{"ca.crt", &*ca_certificate, 0644},
                            Output{"agent.toml", &config, 0644}}) {
    if (auto written = write_file_atomically((dir / out.name).string(), *out.content, out.mode); !written)
      return Unexpected(written.error());
  }
  return "enrolled agent " + request.name + "; bundle in " + dir.string() +
         " (copy it to the gateway and run `tsunagu-lan-agent run -c " + (dir / "agent.toml").string() + "`)\n";
}

std::string other_agent_bundle_in(const std::string& directory, const std::string& agent_name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir(directory);
  fs::path certificate_file = dir / "agent.crt", key_file = dir / "agent.key";
  // Regular files only: a symlink or other non-file there, or a directory others
  // can write, is refused by write_agent_bundle with its own reason.
  if (fs::is_regular_file(fs::symlink_status(certificate_file, ec))) {
    std::optional<std::string> name;
    if (auto certificate = read_text_file(certificate_file.string()))
      if (auto common_name = security::certificate_common_name(*certificate)) name = *common_name;
    if (name == agent_name) return "";
    return certificate_file.string() + " exists and is " +
           (name ? "agent " + *name + "'s" : std::string("not a certificate this command can read")) +
           ": refusing to overwrite that bundle's agent.key; give another --out (or remove the old bundle)";
  }
  if (fs::is_regular_file(fs::symlink_status(key_file, ec)))
    return key_file.string() + " exists (with no agent.crt of " + agent_name +
           "'s beside it): refusing to overwrite it; give another --out (or remove the old bundle)";
  return "";
}

std::string existing_deployment_in(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // Any of the deployment's files, not only ca.key: operators are told to keep
  // ca.key offline, and a deployment without it is still one.
  for (const char* name : {"ca.key", "ca.crt", "node.key", "node.crt", "node.toml", "db/data.mdb"})
    if (fs::exists(fs::path(directory) / name, ec))
      return directory + " already holds a deployment (" + name +
             " exists); use --force to replace it (a new CA and node.toml; the database stays)";
  return "";
}

Expected<std::string, std::string> create_deployment(const DeploymentRequest& request) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir(request.directory);
  // 0750: the node's group may read node.toml (0640); keys stay 0600.
  if (auto made = make_private_directory(dir.string(), 0750); !made) return Unexpected(made.error());
  if (!request.overwrite)
    if (std::string existing = existing_deployment_in(dir.string()); !existing.empty()) return Unexpected(existing);

  auto ca = security::create_certificate_authority("Tsunagu deployment CA", 3650);
  if (!ca) return Unexpected("creating the CA: " + ca.error().detail);
  security::CertificateRequest node_request;
  node_request.common_name = request.dns_names.empty() ? "tsunagu-node" : request.dns_names.front();
  node_request.dns_names = request.dns_names;
  node_request.ip_addresses = request.ip_addresses;
  node_request.usage = security::CertificateRequest::Usage::server;
  auto node = security::issue_certificate(*ca, node_request);
  if (!node) return Unexpected("issuing the node certificate: " + node.error().detail);

  struct Output {
    const char* name;
    const std::string* content;
    unsigned mode;
  };
  std::string config = default_node_config_text(request.public_name, request.public_address);
  for (const Output& out : {Output{"ca.key", &ca->private_key_pem, 0600}, Output{"ca.crt", &ca->certificate_pem, 0644},
                            Output{"node.key", &node->private_key_pem, 0600},
                            Output{"node.crt", &node->certificate_pem, 0644}, Output{"node.toml", &config, 0640}}) {
    if (auto written = write_file_atomically((dir / out.name).string(), *out.content, out.mode); !written)
      return Unexpected(written.error());
  }
  fs::create_directories(dir / "db", ec);
  if (ec) return Unexpected("cannot create " + (dir / "db").string() + ": " + ec.message());
  ::chmod((dir / "db").c_str(), 0700);

  std::string names;
  for (const auto& n : request.dns_names) names += (names.empty() ? "" : ", ") + n;
  for (const auto& n : request.ip_addresses) names += (names.empty() ? "" : ", ") + n;
  return "created deployment in " + dir.string() + "\n  CA certificate (give to terminals): " +
         (dir / "ca.crt").string() + "\n  node certificate valid for: " + names +
         "\n  configuration: " + (dir / "node.toml").string() + "\n";
}

Expected<std::string, std::string> renew_node_certificate(const CertificateRenewal& renewal) {
  auto ca_certificate = read_text_file(renewal.ca_certificate_file);
  if (!ca_certificate) return Unexpected(ca_certificate.error());
  auto ca_key = read_text_file(renewal.ca_private_key_file);
  if (!ca_key) return Unexpected(ca_key.error() + " (renewing needs the CA key)");
  security::CertificateRequest request;
  request.dns_names = renewal.dns_names;
  request.ip_addresses = renewal.ip_addresses;
  if (request.dns_names.empty() && request.ip_addresses.empty()) {
    auto current = read_text_file(renewal.certificate_file);
    if (!current) return Unexpected(current.error() + " (give --name/--ip to renew without it)");
    auto facts = security::certificate_facts(*current);
    if (!facts) return Unexpected(renewal.certificate_file + ": " + facts.error().detail);
    request.dns_names = facts->dns_names;
    request.ip_addresses = facts->ip_addresses;
    // A certificate made elsewhere may name its host only in the subject: a
    // renewal for no name would be one no terminal could check.
    if (request.dns_names.empty() && request.ip_addresses.empty())
      return Unexpected(renewal.certificate_file + " names no DNS name or IP address (subjectAltName): give "
                        "--name/--ip for the new one");
  }
  request.common_name = request.dns_names.empty() ? "tsunagu-node" : request.dns_names.front();
  request.usage = security::CertificateRequest::Usage::server;
  auto issued = security::issue_certificate(security::KeyAndCertificate{*ca_certificate, *ca_key}, request);
  if (!issued) return Unexpected("issuing the node certificate: " + issued.error().detail);
  // The key first: a reload between the two renames finds a key that does not
  // match the certificate, refuses it and keeps serving the old pair.
  if (auto written = write_file_atomically(renewal.private_key_file, issued->private_key_pem, 0600); !written)
    return Unexpected(written.error());
  if (auto written = write_file_atomically(renewal.certificate_file, issued->certificate_pem, 0644); !written)
    return Unexpected(written.error());
  std::string names;
  for (const auto& n : request.dns_names) names += (names.empty() ? "" : ", ") + n;
  for (const auto& n : request.ip_addresses) names += (names.empty() ? "" : ", ") + n;
  auto facts = security::certificate_facts(issued->certificate_pem);
  return "renewed the node certificate " + renewal.certificate_file + " (serial " +
         (facts ? facts->serial_hex : std::string("?")) + ") for: " + names +
         "\n  a running node serves it after `systemctl reload tsunagu-rendezvous` (SIGHUP)\n";
}

}  // namespace tsunagu::rendezvous
