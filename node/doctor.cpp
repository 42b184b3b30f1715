#include "node/doctor.hpp"

#include <sys/stat.h>

#include <exception>

#include "node/node_config.hpp"

namespace tsunagu::rendezvous {

ops::DoctorReport run_node_doctor(const std::string& directory, ops::DoctorClock clock) {
  ops::DoctorReport report;
  NodeConfig config;
  try {
    config = load_node_config(directory);
  } catch (const std::exception& error) {
    report.fail("configuration " + directory + "/node.toml", error.what());
    return report;
  }
  report.ok("configuration " + directory + "/node.toml", "parses");
  ops::check_clock(report, clock);
  ops::check_data_directory(report, config.directory, "deployment directory");
  ops::check_data_directory(report, config.database_directory, "database directory");
  // `init --force` would also replace the CA (every terminal's ca.crt, every
  // agent's certificate): for the node's own certificate, renewal is enough.
  ops::check_certificate(report, config.certificate_file, "node certificate", clock,
                         "tsunagu-rendezvous init " + directory +
                             " --renew-certificate, then systemctl reload tsunagu-rendezvous; the CA stays");
  ops::check_private_key(report, config.private_key_file, "node key");
  ops::check_certificate(report, config.ca_certificate_file, "CA certificate", clock,
                         "a new CA: tsunagu-rendezvous init " + directory +
                             " --force (node.toml is written afresh: keep a copy), then give terminals the new "
                             "ca.crt and enroll every agent again");
  struct stat st {};
  if (stat(config.ca_private_key_file.c_str(), &st) == 0)
    ops::check_private_key(report, config.ca_private_key_file, "CA key");
  else
    report.ok("CA key " + config.ca_private_key_file, "not here (kept offline; `agent enroll` needs it back)");
  // The card issuer's secrets (made by the first `card issue`): a copy of
  // either forges cards or card passwords.
  for (const char* name : {"card_issuer.key", "card_password.secret"}) {
    std::string path = config.directory + "/" + name;
    if (stat(path.c_str(), &st) == 0) ops::check_private_key(report, path, name);
  }
  // Missing, the node does not start; readable, anyone on the host scrapes /metrics.
  if (!config.web_metrics_token_file.empty())
    ops::check_private_key(report, config.web_metrics_token_file, "metrics token web.metrics_token_file");
  if (!config.cluster_redis_password_file.empty())
    ops::check_private_key(report, config.cluster_redis_password_file, "Redis password cluster.redis_password_file");
  constexpr std::string_view self = "tsunagu-rendezvous";
  ops::check_listen_port(report, config.listen.to_string(), false, "terminal listener node.listen", self);
  ops::check_listen_port(report, config.agent_listen.to_string(), false, "agent listener node.agent_listen", self);
  ops::check_listen_port(report, config.stun_listen.to_string(), true, "STUN node.stun_listen", self);
  if (config.web_listen) ops::check_listen_port(report, config.web_listen->to_string(), false, "web.listen", self);
  ops::check_map_usage(report, config.database_directory, config.map_size, "LMDB map");
  return report;
}

}  // namespace tsunagu::rendezvous
