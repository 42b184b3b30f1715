// AgentDaemon::reload: what `systemctl reload tsunagu-lan-agent` (SIGHUP) does
// (docs/lan-agent.md, "Reload"; the node's counterpart is
// node/node_daemon_reload.cpp).
#include "base/audit.hpp"
#include "base/comma_list.hpp"
#include "base/files.hpp"
#include "base/log.hpp"
#include "lan-agent/agent_daemon.hpp"
#include "lan-agent/agent_reload.hpp"
#include "lan-agent/hook_spool.hpp"
#include "security/certificates.hpp"

namespace tsunagu::lanagent {

namespace {

std::string certificate_serial(const std::string& file) {
  if (auto pem = read_text_file(file))
    if (auto facts = security::certificate_facts(*pem)) return facts->serial_hex;
  return "unknown";
}

}  // namespace

void AgentDaemon::reload(const std::string& log_level_override) {
  auto applied = [&]() -> Expected<AgentReloadPlan, std::string> {
    AgentConfig fresh;
    try {
      fresh = load_agent_config(config_.file);
      require_runnable(fresh);
    } catch (const ConfigError& error) {
      return Unexpected(std::string(error.what()));
    }
    AgentReloadPlan plan = plan_agent_reload(config_, std::move(fresh));
    std::shared_ptr<security::TlsContext> tls;
    if (plan.node_changed) {
      auto context = node_tls_context(*plan.next.node);
      if (!context) return Unexpected(context.error());
      tls = *context;
    }
    // Past this point nothing can fail but the node link's address, which is
    // checked before anything else changes.
    if (plan.node_changed && node_) {
      if (auto ok = node_->reconfigure(*plan.next.node, tls); !ok) return Unexpected(ok.error());
    }
    if (log_level_override.empty())
      if (auto level = log::parse_level(plan.next.log_level)) log::set_level(*level);
    core_->set_policy(EdgePolicy(plan.next.policy));
    if (plan.next.hook.allowed_users != config_.hook.allowed_users ||
        plan.next.hook.allowed_groups != config_.hook.allowed_groups) {
      std::vector<std::string> missing;
      access_ = HookAccess::resolve(plan.next.hook.allowed_users, plan.next.hook.allowed_groups, missing);
      for (const auto& m : missing) log::debug() << "hook access: " << m << " does not exist on this host; skipped";
      if (hooks_) hooks_->set_access(access_);
      if (auto ok = prepare_spool_directory(plan.next.hook.spool_directory, spool_group(plan.next.hook.allowed_groups));
          !ok)
        log::warn() << "spool: " << ok.error() << " (hooks cannot spool while the agent is down)";
    }
    config_ = plan.next;
    return plan;
  }();

  if (!applied) {
    log::error() << "reload: " << applied.error() << "; the agent goes on with what it had";
    audit_log_.record(audit::AuditEvent{"reload", {{"result", "failed"}, {"reason", applied.error()}}});
  } else {
    std::string serial = config_.node ? certificate_serial(config_.node->certificate) : "none";
    log::info() << "reload: agent.toml re-read; the log level, policy, hook access and lease files apply now"
                << (applied->node_changed ? ", [node] from the next connection to the node" : "")
                << (applied->restart_needed.empty()
                        ? std::string()
                        : "; these take effect at the next restart: " + comma_list(applied->restart_needed));
    audit::AuditEvent event{"reload", {{"result", "ok"}, {"certificate_serial", serial}}};
    if (applied->node_changed) event.add("node", config_.node->address);
    if (!applied->restart_needed.empty()) event.add("restart_needed", comma_list(applied->restart_needed));
    audit_log_.record(event);
  }
  resync();
}

}  // namespace tsunagu::lanagent
