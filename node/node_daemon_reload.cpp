// NodeDaemon::reload: what `systemctl reload tsunagu-rendezvous` (SIGHUP) does
// (docs/operator.md, "Reload and certificate renewal").
#include <stdexcept>

#include "base/audit.hpp"
#include "base/comma_list.hpp"
#include "base/files.hpp"
#include "base/log.hpp"
#include "node/node_daemon.hpp"
#include "security/certificates.hpp"

namespace tsunagu::rendezvous {

void NodeDaemon::reload(const std::string& directory) {
  auto refuse = [&](const std::string& why) {
    log::error() << "reload: " << why << "; the node goes on with what it had";
    audit_log_.record(audit::AuditEvent{"reload", {{"result", "failed"}, {"reason", why}}});
  };
  NodeConfig next;
  try {
    next = load_node_config(directory);
  } catch (const std::exception& error) {
    return refuse(error.what());
  }
  security::TlsContext::ServerOptions options;
  options.certificate_chain_file = next.certificate_file;
  options.private_key_file = next.private_key_file;
  auto tls = security::TlsContext::server(options);
  if (!tls) return refuse("TLS: " + tls.error().detail);
  options.client_ca_file = next.ca_certificate_file;
  auto agent_tls = security::TlsContext::server(options);
  if (!agent_tls) return refuse("TLS (agent port): " + agent_tls.error().detail);

  // Links hold their own TLS sessions, so swapping the contexts touches only
  // the connections accepted from now on.
  tls_ = *tls;
  agent_tls_ = *agent_tls;
  if (web_server_) web_server_->replace_tls(tls_);

  // The node.toml value of max_links unchanged: keep what start() fitted to
  // the descriptor limit, so it does not read as a change.
  if (next.settings.max_links == config_.settings.max_links) next.settings.max_links = max_links_;
  std::vector<std::string> need_restart;
  if (next.settings.software != config_.settings.software) need_restart.emplace_back("node.software");
  if (next.database_directory != config_.database_directory) need_restart.emplace_back("storage.directory");
  if (next.map_size != config_.map_size) need_restart.emplace_back("storage.map_size_mb");
  for (auto& key : core_->reload_settings(next.settings)) need_restart.push_back(std::move(key));
  if (auto level = log::parse_level(next.log_level)) log::set_level(*level);
  config_.settings = core_->settings();
  if (shared_accounts_) shared_accounts_->set_removed_id_quarantine_days(config_.settings.removed_id_quarantine_days);
  config_.log_level = next.log_level;
  config_.certificate_file = next.certificate_file;
  config_.private_key_file = next.private_key_file;
  config_.ca_certificate_file = next.ca_certificate_file;

  std::string serial = "unknown";
  if (auto pem = read_text_file(next.certificate_file)) {
    if (auto facts = security::certificate_facts(*pem)) serial = facts->serial_hex;
  }
  log::info() << "reload: node.toml and the certificate (serial " << serial << ") re-read; limits and policy apply now"
              << (need_restart.empty() ? std::string() : "; these take effect at the next restart: " + comma_list(need_restart));
  audit::AuditEvent event{"reload", {{"result", "ok"}, {"certificate_serial", serial}}};
  if (!need_restart.empty()) event.add("restart_needed", comma_list(need_restart));
  audit_log_.record(event);
}

}  // namespace tsunagu::rendezvous
