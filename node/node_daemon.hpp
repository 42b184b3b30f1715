// The node daemon: one libuv loop, the TLS listener, the UDP STUN service, a
// timer, and the thread pool for password hashing. Everything it decides is
// decided by NodeCore; this file only moves bytes and events.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "base/audit_log.hpp"
#include "base/expected.hpp"
#include "cluster/pg/pg_account_admin.hpp"
#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_agent_directory.hpp"
#include "cluster/pg/pg_card_ledger_store.hpp"
#include "cluster/pg/pg_voicemail_boxes.hpp"
#include "node/cluster_relay.hpp"
#include "node/node_config.hpp"
#include "rendezvous/node_core.hpp"
#include "rendezvous/stun_binding_responder.hpp"
#include "transport/tls_link.hpp"
#include "transport/turn_log_hold.hpp"
#include "transport/udp_socket.hpp"
#include "rendezvous/web_api.hpp"
#include "web/http_server.hpp"
#include "web/prometheus.hpp"

namespace tsunagu::rendezvous {

class NodeDaemon {
 public:
  // Opens storage, binds both ports and starts serving on `loop`. On success
  // the bound addresses are in tls_address()/stun_address().
  static Expected<std::unique_ptr<NodeDaemon>, std::string> start(uv_loop_t* loop, const NodeConfig& config);
  NodeDaemon(const NodeDaemon&) = delete;
  NodeDaemon& operator=(const NodeDaemon&) = delete;
  ~NodeDaemon();

  // Stops accepting, commits what is pending, closes every link and handle;
  // the loop then ends by itself.
  void shutdown();
  // SIGHUP (node_daemon_reload.cpp): re-reads DIR/node.toml and the
  // certificates; new connections get the new certificate, limits and policy
  // apply from now on, no link is dropped. Logs and audits what it did; on any
  // error (a broken node.toml, a key that does not match) nothing changes.
  void reload(const std::string& directory);
  proto::SocketAddress tls_address() const;
  proto::SocketAddress agent_address() const;
  proto::SocketAddress stun_address() const { return stun_->local_address(); }
  // The HTTPS listener's address; nullopt when [web] listen is off.
  std::optional<proto::SocketAddress> web_address() const;
  // The /metrics text (node_metrics.hpp), read between loop turns;
  // `web_sessions` comes from the web server, which holds them.
  std::string metrics_text(size_t web_sessions = 0);

 private:
  NodeDaemon() = default;
  static void on_connection(uv_stream_t* server, int status);
  static void on_agent_connection(uv_stream_t* server, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_check(uv_check_t* check);
  void accept_link(bool agent);
  std::shared_ptr<const transport::LinkCallbacks> make_link_callbacks(bool agent);
  // The web listener (node_web.cpp): the JSON API, the pages, /metrics.
  std::optional<std::string> start_web();
  void web_request(web::HttpRequest request, web::Responder respond);
  std::variant<web::WebSocketHandlers, web::HttpResponse> web_socket(
      const web::HttpRequest& request, std::function<void(std::shared_ptr<web::WebSocketChannel>)>& accepted);
  void drain();
  void deliver(const NodeAction& action);  // to a TLS link
  void run_password_jobs();
  void run_relay_name_lookups();
  void rearm_timer();
  Now now() const;

  uv_loop_t* loop_ = nullptr;
  NodeConfig config_;
  std::unique_ptr<AccountStore> store_;
  // Cluster mode (config_.postgres): the accounts NodeCore uses; closed by
  // shutdown() while core_ still takes its answers.
  std::unique_ptr<cluster::PgAccountDirectory> shared_accounts_;
  std::unique_ptr<cluster::PgAgentDirectory> shared_agents_;  // agents' enrolments, on the same read connection
  std::unique_ptr<cluster::PgVoicemailBoxes> shared_voicemail_;  // voicemail, in the accounts' turn
  std::unique_ptr<cluster::PgCardLedgerStore> shared_cards_;      // the card ledger, in the accounts' turn
  std::unique_ptr<cluster::PgSharedAccountAdmin> shared_account_admin_;  // the web API's admin endpoints
  audit::AuditLog audit_log_;  // before core_, which records into it
  std::unique_ptr<NodeCore> core_;
  std::unique_ptr<StunBindingResponder> stun_responder_;
  std::unique_ptr<transport::UdpSocket> stun_;
  std::shared_ptr<security::TlsContext> tls_;
  std::shared_ptr<security::TlsContext> agent_tls_;
  uv_tcp_t* listener_ = nullptr;
  uv_tcp_t* agent_listener_ = nullptr;
  // One set of callbacks per listener, shared by all of its links.
  std::shared_ptr<const transport::LinkCallbacks> terminal_link_callbacks_;
  std::shared_ptr<const transport::LinkCallbacks> agent_link_callbacks_;
  uv_timer_t* timer_ = nullptr;
  std::optional<uint64_t> armed_deadline_;  // what timer_ was last armed for (rearm_timer)
  uv_check_t* check_ = nullptr;
  std::unique_ptr<transport::TurnLogHold> turn_log_;  // the audit lines of a turn: one write
  std::unordered_map<LinkId, transport::TlsLink*> links_;
  std::unordered_set<LinkId> close_when_ready_;  // closes asked for before TLS was up
  size_t max_links_ = 0;                          // NodeSettings::max_links as started
  // Links closing at shutdown: a peer that stops reading could hold a
  // graceful close open for ever, so they are cut after a grace period.
  std::unordered_map<LinkId, transport::TlsLink*> closing_links_;
  uv_timer_t* shutdown_timer_ = nullptr;
  size_t jobs_in_flight_ = 0;
  bool stopping_ = false;
  Bytes stun_reply_;
  web::LatencyHistogram commit_latency_;  // commit_turn() calls that committed a write
  // The voicemail store's totals for /metrics: a scan of every message header,
  // so done at most every kVoicemailUsageMaxAgeMs, not at every scrape.
  std::optional<VoicemailStore::Usage> voicemail_usage_;
  uint64_t voicemail_usage_read_ms_ = 0;
  // After core_: they hold references to it and go first.
  std::unique_ptr<ClusterRelay> cluster_;  // cluster mode ([cluster] redis); null for the embedded node
  std::unique_ptr<WebApi> web_api_;
  std::unique_ptr<web::HttpServer> web_server_;
  std::string metrics_token_;  // [web] metrics_token_file's token; empty: /metrics for loopback clients only
  // The WebSocket of events each session has open now (a newer one replaces it).
  std::unordered_map<uint64_t, std::weak_ptr<web::WebSocketChannel>> event_sockets_;
};

}  // namespace tsunagu::rendezvous
