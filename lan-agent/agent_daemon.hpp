// tsunagu-lan-agent's running daemon: the allocation table, the hook socket
// (group commit), spool replay, lease-file syncs, expiry housekeeping and the
// node link, on one libuv loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "allocation/allocation_table.hpp"
#include "base/audit_log.hpp"
#include "base/expected.hpp"
#include "base/log.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_core.hpp"
#include "lan-agent/agent_web.hpp"
#include "lan-agent/hook_event_log.hpp"
#include "lan-agent/hook_access.hpp"
#include "lan-agent/hook_server.hpp"
#include "lan-agent/lan_call_relay.hpp"
#include "lan-agent/lan_voicemail_courier.hpp"
#include "lan-agent/node_link.hpp"
#include "lan-agent/table_files.hpp"
#include "storage/lmdb_store.hpp"
#include "storage/storage_error_log.hpp"

namespace tsunagu::lanagent {

// The TLS client context of the node link: the agent's certificate and key,
// the node's CA.
Expected<std::shared_ptr<security::TlsContext>, std::string> node_tls_context(const NodeSettings& node);

class AgentDaemon {
 public:
  static Expected<std::unique_ptr<AgentDaemon>, std::string> start(uv_loop_t* loop, AgentConfig config);
  AgentDaemon(const AgentDaemon&) = delete;
  AgentDaemon& operator=(const AgentDaemon&) = delete;
  ~AgentDaemon();

  // SIGHUP: re-sync the configured lease files (and replay spools).
  void resync();
  // SIGHUP (agent_daemon_reload.cpp): re-reads agent.toml and applies what
  // can change while running (agent_reload.hpp), or, when it does not load
  // (or its certificates do not), changes nothing and says why; one
  // `event=reload` audit line either way; then resync(). A log level given on
  // the command line (`log_level_override`) stays.
  void reload(const std::string& log_level_override);
  // SIGTERM: commit what is pending, close the link and the socket; done()
  // runs once every handle is closed.
  void shutdown(std::function<void()> done);

  // What the status page and /metrics show (agent_web.hpp), read now.
  AgentStatusInput status_input();
  std::string metrics_text() { return agent_metrics_text(status_input().metrics); }

  // The status page's HTTPS server ([web] in agent.toml): with web.listen
  // set, reads the token file and hands `start_server` the address and the
  // request handler; the server (web/) belongs to the caller, which closes it
  // before shutdown(). Without web.listen nothing is started.
  using WebHandler = std::function<web::HttpResponse(const web::HttpRequest&)>;
  using WebServerStart = std::function<Expected<void, std::string>(const std::string& listen, WebHandler handler)>;
  Expected<void, std::string> start_web(const WebServerStart& start_server);

 private:
  explicit AgentDaemon(uv_loop_t* loop, AgentConfig config) : loop_(loop), config_(std::move(config)) {}
  bool apply_events(std::vector<alloc::LeaseEvent>& events, std::string_view origin);
  void replay_spools();
  void sync_lease_files();
  void housekeeping();
  void arm_housekeeping();
  void handle_closed();
  // The table commits to the page cache only; this writes it to the disk on
  // the thread pool every table.flush_interval_ms (table_files.hpp).
  void start_flush();
  // A failure of the allocation table: counted by kind and logged, rate-limited.
  void table_failed(std::string_view context, const alloc::TableError& error);

  uv_loop_t* loop_;
  AgentConfig config_;
  OpenTable open_;
  HookAccess access_;
  std::set<std::string> refused_spools_;  // spool files already reported as left alone
  std::unique_ptr<AgentCore> core_;
  std::unique_ptr<HookServer> hooks_;
  std::unique_ptr<NodeLink> node_;
  std::unique_ptr<LanCallRelay> calls_;  // declared after node_: destroyed first
  std::unique_ptr<LanVoicemailCourier> voicemail_;
  uv_timer_t* housekeeping_timer_ = nullptr;
  uv_timer_t* spool_timer_ = nullptr;
  uv_timer_t* flush_timer_ = nullptr;
  uv_work_t flush_work_{};
  bool flush_running_ = false;
  bool flush_failed_ = false;  // logged once until a flush succeeds again
  bool flush_failed_now_ = false;  // written by the work thread, read after it
  unsigned closing_parts_ = 0;
  std::function<void()> on_shutdown_;
  log::RateLimit stale_end_log_{20, std::chrono::seconds(60)};  // ends the table refused
  log::RateLimit conflict_log_{20, std::chrono::seconds(60)};   // hostnames claiming bound extensions (LAN hosts)
  bool shutting_down_ = false;
  storage::StorageErrorLog storage_errors_;
  audit::AuditLog audit_log_;
  HookEventLog hook_events_;  // the last events from hooks, and counts by server kind  // the table's failures (the node's daemon logs the same way)
};

}  // namespace tsunagu::lanagent
