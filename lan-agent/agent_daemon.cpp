#include "lan-agent/agent_daemon.hpp"

#include <ctime>
#include <filesystem>

#include "allocation/field_normalisation.hpp"
#include "base/log.hpp"
#include "lan-agent/hook_protocol.hpp"
#include "lan-agent/hook_spool.hpp"
#include "lan-agent/lan_pki.hpp"
#include "proto/signalling.hpp"
#include "lan-agent/lease_file_reader.hpp"
#include "lan-agent/table_view.hpp"

namespace tsunagu::lanagent {
namespace {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }
constexpr uint64_t kSpoolCheckMs = 2000;
constexpr int64_t kMaxHousekeepingDelay = 60;

}  // namespace

Expected<std::shared_ptr<security::TlsContext>, std::string> node_tls_context(const NodeSettings& node) {
  security::TlsContext::ClientOptions tls_options;
  tls_options.ca_file = node.ca_certificate;
  tls_options.certificate_chain_file = node.certificate;
  tls_options.private_key_file = node.private_key;
  auto context = security::TlsContext::client(tls_options);
  if (!context)
    return Unexpected("node TLS (" + node.certificate + ", " + node.private_key + ", " + node.ca_certificate +
                      "): " + context.error().detail);
  return *context;
}

// Rings for our extensions: the LAN CA (made on first use), a TLS client
// context presenting the agent's LAN certificate, and the relay wired to the
// node link.
struct LanParts {
  std::unique_ptr<LanCallRelay> relay;
  std::unique_ptr<LanVoicemailCourier> courier;
};

static Expected<LanParts, std::string> start_call_relay(uv_loop_t* loop, const AgentConfig& c, AgentCore& core,
                                                        NodeLink& node) {
  auto pki = ensure_lan_pki(c.data_directory, c.name);
  if (!pki) return Unexpected("LAN CA: " + pki.error());
  security::TlsContext::ClientOptions options;
  options.ca_file = pki->ca_certificate;
  options.certificate_chain_file = pki->agent_certificate;
  options.private_key_file = pki->agent_key;
  auto context = security::TlsContext::client(options);
  if (!context) return Unexpected("LAN terminal TLS (" + pki->agent_certificate + "): " + context.error().detail);
  LanCallRelay::ToNode to_node;
  to_node.send = [&node](ByteView message) { node.send(message); };
  to_node.hang_up = [&node](const std::string& call_id) {
    node.request(
        proto::method::hangup, [&](proto::MessageBuilder& b) { b.add_string(proto::attr::call_id, call_id); },
        [](const proto::Message*) {});
  };
  LanParts parts;
  auto revocations = std::make_shared<TerminalRevocations>(terminal_certificate_files(c.data_directory).revoked);
  parts.relay =
      std::make_unique<LanCallRelay>(loop, core, c.calls, *context, revocations, unix_now, std::move(to_node));
  parts.courier = std::make_unique<LanVoicemailCourier>(loop, core, node, c.calls, *context, revocations, unix_now);
  LanCallRelay* r = parts.relay.get();
  LanVoicemailCourier* courier = parts.courier.get();
  node.on_call_message = [r](const proto::Message& message, ByteView raw) { r->on_node_message(message, raw); };
  node.on_link_lost = [r] { r->node_link_lost(); };
  // Voicemail waiting for our extensions goes out when the node link is up.
  node.on_state = [courier](transport::LinkState state) {
    if (state == transport::LinkState::up) courier->deliver_all();
  };
  log::info() << "LAN calls: rings pass to terminals on TLS port " << c.calls.terminal_port << " (LAN CA "
              << pki->ca_certificate << ")";
  return parts;
}

Expected<std::unique_ptr<AgentDaemon>, std::string> AgentDaemon::start(uv_loop_t* loop, AgentConfig config) {
  std::unique_ptr<AgentDaemon> d(new AgentDaemon(loop, std::move(config)));
  const AgentConfig& c = d->config_;
  auto opened = open_table(c, true, TableUser::agent);
  if (!opened) return Unexpected(opened.error());
  d->open_ = std::move(*opened);
  for (const auto& [extension, client] : c.table.pins) {
    auto current = d->open_.table->binding(extension);
    if (!current) return Unexpected("table.pins: " + current.error().detail);
    if (*current && (*current)->client == client && (*current)->origin == alloc::BindingOrigin::admin) continue;
    auto bound = d->open_.table->bind(extension, client, unix_now());
    if (!bound) return Unexpected("table.pins: " + extension + ": " + bound.error().detail);
    log::info() << "table.pins: " << extension << " bound to " << client.value;
  }
  std::vector<std::string> missing;
  d->access_ = HookAccess::resolve(c.hook.allowed_users, c.hook.allowed_groups, missing);
  for (const auto& m : missing) log::debug() << "hook access: " << m << " does not exist on this host; skipped";
  d->core_ = std::make_unique<AgentCore>(*d->open_.table, AgentIdentity{c.name, c.domains, c.number_prefixes},
                                         EdgePolicy(c.policy));

  std::shared_ptr<security::TlsContext> tls;
  if (c.node) {
    auto context = node_tls_context(*c.node);
    if (!context) return Unexpected(context.error());
    tls = *context;
  }

  // Events the hook spooled while we were down come first, then the servers'
  // lease files (which the table orders against what the spool said).
  if (auto ok = prepare_spool_directory(c.hook.spool_directory, spool_group(c.hook.allowed_groups)); !ok)
    log::warn() << "spool: " << ok.error() << " (hooks cannot spool while the agent is down)";
  d->replay_spools();
  if (c.sync_on_start || d->open_.rebuilt) d->sync_lease_files();
  if (d->open_.rebuilt) {
    auto leases = d->open_.table->list(unix_now());
    log::warn() << "table: rebuilt from " << c.sync_sources.size() << " lease file(s), the spool and the admin bindings: "
                << (leases ? std::to_string(leases->size()) : std::string("?")) << " live lease(s)"
                << (c.sync_sources.empty() ? " (no sync.lease_files: hooks refill the table as leases renew)" : "");
  }

  if (auto parent = std::filesystem::path(c.hook.socket).parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  AgentDaemon* self = d.get();
  HookServer::Handlers handlers;
  handlers.commit = [self](std::vector<alloc::LeaseEvent>& events) { return self->apply_events(events, "hook"); };
  handlers.init_listing = [self]() {
    auto leases = self->open_.table->list(unix_now());
    if (!leases) {
      log::error() << "dnsmasq init: " << leases.error().detail;
      return std::string();
    }
    return dnsmasq_init_listing(*leases, unix_now());
  };
  auto hooks = HookServer::start(loop, c.hook.socket, d->access_, std::move(handlers));
  if (!hooks) return Unexpected("hook socket " + hooks.error());
  d->hooks_ = std::move(*hooks);

  if (c.node) {
    d->node_ = std::make_unique<NodeLink>(loop, *c.node, tls, *d->core_, unix_now);
    if (c.calls.enabled) {
      auto parts = start_call_relay(loop, c, *d->core_, *d->node_);
      if (!parts) return Unexpected(parts.error());
      d->calls_ = std::move(parts->relay);
      d->voicemail_ = std::move(parts->courier);
    }
    if (auto started = d->node_->start(); !started) return Unexpected(started.error());
  } else {
    log::warn() << "no [node] section: running without a node link (the LAN table only)";
  }

  d->housekeeping_timer_ = new uv_timer_t;
  uv_timer_init(loop, d->housekeeping_timer_);
  d->housekeeping_timer_->data = self;
  d->spool_timer_ = new uv_timer_t;
  uv_timer_init(loop, d->spool_timer_);
  d->spool_timer_->data = self;
  // A hook that timed out waiting for us spooled its event: pick it up soon.
  uv_timer_start(d->spool_timer_, [](uv_timer_t* t) { static_cast<AgentDaemon*>(t->data)->replay_spools(); },
                 kSpoolCheckMs, kSpoolCheckMs);
  d->flush_timer_ = new uv_timer_t;
  uv_timer_init(loop, d->flush_timer_);
  d->flush_timer_->data = self;
  d->flush_work_.data = self;
  auto interval = static_cast<uint64_t>(c.table.flush_interval_ms);
  uv_timer_start(d->flush_timer_, [](uv_timer_t* t) { static_cast<AgentDaemon*>(t->data)->start_flush(); },
                 interval, interval);
  d->arm_housekeeping();
  return d;
}

void AgentDaemon::start_flush() {
  if (flush_running_) return;
  flush_running_ = true;
  // mdb_env_sync may run beside a commit on the loop thread: it only fdatasyncs the file.
  uv_queue_work(
      loop_, &flush_work_,
      [](uv_work_t* w) {
        auto* self = static_cast<AgentDaemon*>(w->data);
        self->flush_failed_now_ = !self->open_.env->flush().has_value();
      },
      [](uv_work_t* w, int) {
        auto* self = static_cast<AgentDaemon*>(w->data);
        self->flush_running_ = false;
        if (self->flush_failed_now_ && !self->flush_failed_)
          log::error() << "table: flushing " << self->open_.paths.table_directory
                       << " to the disk failed; the table is rebuilt from the lease files if the machine stops now";
        self->flush_failed_ = self->flush_failed_now_;
        if (self->shutting_down_) self->handle_closed();
      });
}

AgentDaemon::~AgentDaemon() = default;

bool AgentDaemon::apply_events(std::vector<alloc::LeaseEvent>& events, std::string_view origin) {
  int64_t now = unix_now();
  auto batch = open_.table->begin_batch();
  if (!batch) {
    table_failed("table: ", batch.error());
    return false;
  }
  std::vector<alloc::TableChange> changes;
  if (origin == "hook" || origin == "spool")
    for (const auto& e : events) hook_events_.record(e, origin == "hook" ? HookPath::socket : HookPath::spool, now);
  for (const auto& e : events) {
    auto result = batch->apply(e, now);
    if (!result) {
      if (result.error().code == alloc::TableErrc::invalid_argument) {
        log::warn() << origin << ": event skipped: " << result.error().detail;
        continue;
      }
      table_failed("table: ", result.error());
      return false;
    }
    // An end the table refused is worth a line: it names another lease of that
    // client (an old address, an old client-id), or arrived after a newer grant.
    if (result->outcome == alloc::ApplyOutcome::stale && alloc::ends_lease(e.action) && stale_end_log_.allow())
      log::info() << origin << ": ignored " << alloc::to_string(e.action) << " of " << alloc::ip_to_string(e.address)
                  << " (" << (e.mac.empty() ? std::string_view(e.client_id) : e.mac.view())
                  << "): the table knows a newer lease of that client";
    for (auto& ch : result->changes) changes.push_back(std::move(ch));
  }
  if (auto ok = batch->commit(); !ok) {
    table_failed("table commit: ", ok.error());
    return false;
  }
  // A disabled line still builds its stream and describe_change its string:
  // 6% of the agent's CPU per one-event hook call at log_level warn.
  bool log_changes = log::level() <= log::Level::info;
  for (const auto& ch : changes) {
    if (ch.kind == alloc::ChangeKind::binding_conflict) {
      if (conflict_log_.allow()) log::warn() << origin << ": " << describe_change(ch);
    } else if (log_changes) {
      log::info() << origin << ": " << describe_change(ch);
    }
  }
  // A terminal that got or renewed its lease is back: deliver its voicemail.
  if (voicemail_)
    for (const auto& ch : changes)
      if (!ch.extension.empty() && (ch.kind == alloc::ChangeKind::lease_granted ||
                                    ch.kind == alloc::ChangeKind::lease_renewed ||
                                    ch.kind == alloc::ChangeKind::lease_moved))
        voicemail_->deliver(ch.extension);
  if (!changes.empty()) arm_housekeeping();
  return true;
}

void AgentDaemon::table_failed(std::string_view context, const alloc::TableError& error) {
  // The table's own kinds beside LMDB's: a record this build cannot read is
  // corruption; an argument the table refused is this program's bug.
  storage::StoreErrc kind = error.code == alloc::TableErrc::storage            ? error.store_code
                            : error.code == alloc::TableErrc::corrupted_record ? storage::StoreErrc::corrupted
                                                                               : storage::StoreErrc::other;
  storage_errors_.note(log::Level::error, context, storage::StoreError{kind, 0, error.detail});
}

void AgentDaemon::replay_spools() {
  auto reports = replay_spool_directory(
      config_.hook.spool_directory, [this](uid_t uid, gid_t gid) { return access_.allows(uid, gid); },
      [this](std::vector<alloc::LeaseEvent>& events) { return apply_events(events, "spool"); });
  for (const auto& r : reports) {
    if (!r.error.empty()) {
      // Replays run every 2 s: a file left alone is reported once, not each time.
      if (refused_spools_.size() < 4096 && refused_spools_.insert(r.path + ": " + r.error).second)
        log::warn() << "spool " << r.path << ": " << r.error;
      continue;
    }
    log::info() << "spool " << r.path << ": replayed " << r.replay.records << " event(s)"
                << (r.replay.skipped_records ? ", skipped " + std::to_string(r.replay.skipped_records) + " damaged" : "")
                << (r.replay.torn_tail_bytes ? ", dropped a torn last record" : "");
  }
}

void AgentDaemon::sync_lease_files() {
  for (const auto& source : config_.sync_sources) {
    auto snapshot = read_lease_file(source);
    if (!snapshot) {
      log::warn() << "sync " << sync_kind_name(source.kind) << ": " << snapshot.error();
      continue;
    }
    auto result = sync_snapshot(*open_.table, *snapshot, unix_now());
    if (!result) {
      table_failed("sync " + source.path + ": ", result.error());
      continue;
    }
    for (const auto& ch : result->changes) log::info() << "sync: " << describe_change(ch);
    log::info() << "synced " << sync_kind_name(source.kind) << ":" << source.path << ": "
                << snapshot->leases.size() << " lease(s), " << result->applied << " new, " << result->ended_absent
                << " ended"
                << (snapshot->bad_records ? " (" + std::to_string(snapshot->bad_records) +
                                                " unreadable record(s): nothing ended)"
                                          : "");
  }
  arm_housekeeping();
}

void AgentDaemon::resync() {
  log::info() << "SIGHUP: re-syncing lease files";
  replay_spools();
  sync_lease_files();
}

void AgentDaemon::housekeeping() {
  auto changes = open_.table->expire_stale(unix_now());
  if (!changes) table_failed("expiry: ", changes.error());
  else
    for (const auto& ch : *changes) log::info() << "expiry: " << describe_change(ch);
  arm_housekeeping();
}

void AgentDaemon::arm_housekeeping() {
  if (housekeeping_timer_ == nullptr || shutting_down_) return;
  int64_t now = unix_now();
  int64_t delay = kMaxHousekeepingDelay;
  if (auto next = open_.table->next_deadline(); next && next->has_value())
    delay = std::clamp<int64_t>(**next - now, 0, kMaxHousekeepingDelay);
  uv_timer_start(housekeeping_timer_, [](uv_timer_t* t) { static_cast<AgentDaemon*>(t->data)->housekeeping(); },
                 static_cast<uint64_t>(delay) * 1000 + 50, 0);
}

void AgentDaemon::handle_closed() {
  if (--closing_parts_ != 0) return;
  // Nothing writes any more: the final flush, then the marker that says the file is whole.
  if (auto clean = mark_table_clean(open_); !clean)
    log::error() << "table: " << clean.error() << " (the next start rebuilds the table if the machine reboots first)";
  else
    log::debug() << "table: flushed; " << open_.paths.clean_marker << " written";
  if (on_shutdown_) {
    auto done = std::move(on_shutdown_);
    on_shutdown_ = nullptr;
    done();
  }
}

void AgentDaemon::shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_shutdown_ = std::move(done);
  closing_parts_ = 1;  // released at the end of this function
  if (flush_running_) ++closing_parts_;  // its completion releases it
  for (uv_timer_t** timer : {&housekeeping_timer_, &spool_timer_, &flush_timer_}) {
    if (*timer == nullptr) continue;
    ++closing_parts_;
    uv_close(reinterpret_cast<uv_handle_t*>(*timer), [](uv_handle_t* h) {
      auto* self = static_cast<AgentDaemon*>(h->data);
      delete reinterpret_cast<uv_timer_t*>(h);
      self->handle_closed();
    });
    *timer = nullptr;
  }
  if (hooks_) {
    ++closing_parts_;
    hooks_->close([this] { handle_closed(); });
  }
  if (calls_) calls_->stop();
  if (voicemail_) voicemail_->stop();
  if (node_) {
    ++closing_parts_;
    node_->stop([this] { handle_closed(); });
  }
  handle_closed();
}

AgentStatusInput AgentDaemon::status_input() {
  AgentStatusInput in;
  in.now = unix_now();
  in.agent_name = config_.name;
  auto note = [&](const alloc::TableError& error) {
    if (in.table_error.empty()) in.table_error = error.detail;
  };
  if (auto leases = open_.table->list(in.now)) in.leases = std::move(*leases);
  else note(leases.error());
  if (auto bindings = open_.table->bindings()) in.bindings = std::move(*bindings);
  else note(bindings.error());
  if (auto conflicts = open_.table->conflicts()) in.conflicts = std::move(*conflicts);
  else note(conflicts.error());
  in.recent_events.assign(hook_events_.recent().begin(), hook_events_.recent().end());

  AgentMetricsInput& m = in.metrics;
  m.live_leases = in.leases.size();
  m.bindings = in.bindings.size();
  m.conflicts = in.conflicts.size();
  count_hook_events(hook_events_, m);
  if (hooks_) {
    const HookServerStats& hooks = hooks_->stats();
    m.hook_connections = hooks.connections;
    m.hook_refused_peers = hooks.refused_peers;
    m.hook_bad_requests = hooks.bad_requests;
    m.hook_failed_commits = hooks.failed_commits;
  }
  m.spool = spool_depth(config_.hook.spool_directory);
  m.node_configured = node_ != nullptr;
  if (node_) {
    m.node_linked = node_->linked();
    m.node_connects = node_->stats().connects;
  }
  m.answers = core_->answers();
  for (size_t i = 0; i < storage::store_errc_count; ++i)
    m.storage_errors[i] = storage_errors_.count(static_cast<storage::StoreErrc>(i));
  return in;
}

Expected<void, std::string> AgentDaemon::start_web(const WebServerStart& start_server) {
  if (config_.web.listen.empty()) return {};
  auto token = read_web_token(config_.web.token_file);
  if (!token) return Unexpected("web.token_file: " + token.error());
  WebHandler handler = [this, admin_token = std::move(*token)](const web::HttpRequest& request) {
    return agent_web_handle(request, [this] { return status_input(); }, admin_token);
  };
  if (auto started = start_server(config_.web.listen, std::move(handler)); !started)
    return Unexpected("web.listen " + config_.web.listen + ": " + started.error());
  log::info() << "status page and /metrics on https://" << config_.web.listen << "/ (admin token from "
              << config_.web.token_file << ")";
  return {};
}

}  // namespace tsunagu::lanagent
