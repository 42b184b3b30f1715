#include "node/node_daemon.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <sstream>

#include "base/files.hpp"
#include "base/log.hpp"
#include "rendezvous/card_issuer.hpp"
#include "rendezvous/node_metrics.hpp"
#include "security/passwords.hpp"
#include "storage/storage_error_log.hpp"

namespace tsunagu::rendezvous {
namespace {

template <class Handle>
void close_and_delete(Handle* handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

struct RelayNameWork {
  uv_getaddrinfo_t request{};
  NodeDaemon* daemon = nullptr;
  std::string host;
};

// getaddrinfo's answer as addresses (ports dropped: the card's relay URI has the port).
std::vector<proto::SocketAddress> relay_addresses(const addrinfo* list) {
  std::vector<proto::SocketAddress> addresses;
  for (const addrinfo* entry = list; entry != nullptr && addresses.size() < 16; entry = entry->ai_next) {
    proto::SocketAddress address;
    if (entry->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ai_addr);
      std::array<uint8_t, 4> ip{};
      std::memcpy(ip.data(), &in->sin_addr, 4);
      address = proto::SocketAddress::v4(ip, 0);
    } else if (entry->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ai_addr);
      std::array<uint8_t, 16> ip{};
      std::memcpy(ip.data(), &in6->sin6_addr, 16);
      address = proto::SocketAddress::v6(ip, 0);
    } else {
      continue;
    }
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) addresses.push_back(address);
  }
  return addresses;
}

struct PasswordWork {
  uv_work_t request{};
  NodeDaemon* daemon = nullptr;
  PasswordJob job;
  PasswordJobResult result;
};

// [cluster] redis_user and redis_password_file: the password is the file's
// first line. A file others may read is refused, as a key would be.
Expected<cluster::RedisAuth, std::string> read_redis_auth(const NodeConfig& config) {
  cluster::RedisAuth auth;
  if (config.cluster_redis_password_file.empty()) return auth;
  const std::string& file = config.cluster_redis_password_file;
  struct stat info {};
  if (stat(file.c_str(), &info) == 0 && (info.st_mode & S_IRWXO) != 0)
    return Unexpected("cluster.redis_password_file " + file + " may be read by others: chmod 0600 it");
  auto text = read_text_file(file, 4096);
  if (!text) return Unexpected("cluster.redis_password_file: " + text.error());
  auth.password = text->substr(0, text->find_first_of("\r\n"));
  if (auth.password.empty()) return Unexpected("cluster.redis_password_file " + file + ": its first line is empty");
  auth.user = config.cluster_redis_user;
  return auth;
}

log::RateLimit bad_input_log(20, std::chrono::seconds(10));
// Enough lines to see the cause, a count of the rest (NodeCore counts them by kind).
storage::StorageErrorLog storage_log;

void log_storage_faults(std::vector<StorageFault> faults) {
  for (const auto& fault : faults) {
    std::ostringstream context;
    if (fault.commit)
      context << "group commit failed, " << fault.replies_failed << " acknowledgement(s) answered as failures: ";
    else if (fault.method != 0)
      context << "storage error answering request 0x" << std::hex << fault.method << std::dec << ": ";
    else
      context << "storage error in a background sweep or check: ";
    storage_log.log(fault.commit ? log::Level::error : log::Level::warn, context.str(), fault.error);
  }
}
// Refused links (node full) held open for their notice, at most: the
// descriptors start() keeps in reserve below the limit.
constexpr size_t kRefusalMargin = 32;

// The deployment's card issuer keys, what card calls must verify under: read
// now and again when a card names a key not read yet (`card issue` or `card
// rekey` ran since the node started). No issuer yet: no card verifies.
void use_card_issuers(NodeSettings& settings, const std::string& directory) {
  auto read = [directory] {
    auto issuer = load_card_issuer(directory, false);
    return issuer ? issuer->trusted : std::vector<cards::TrustedIssuer>{};
  };
  settings.card_issuers = read();
  settings.reload_card_issuers = read;
  // Asked at each card presented: the file is read again only when it was
  // replaced (`card publish` renames a new one into place) or changed.
  struct Cached {
    std::string stamp;
    Bytes bytes;
  };
  auto cache = std::make_shared<Cached>();
  settings.read_card_update = [directory, cache] {
    struct stat file {};
    if (stat(card_update_path(directory).c_str(), &file) != 0) return Bytes{};
    std::string stamp = std::to_string(file.st_ino) + "/" + std::to_string(file.st_size) + "/" +
                        std::to_string(file.st_mtim.tv_sec) + "." + std::to_string(file.st_mtim.tv_nsec);
    if (stamp != cache->stamp) {
      cache->stamp = stamp;
      cache->bytes = read_card_update_file(directory);
    }
    return cache->bytes;
  };
  settings.read_card_key_rollovers = [directory] { return read_card_key_rollovers(directory); };
  settings.resolve_relay_names = true;  // run_relay_name_lookups()
}

}  // namespace

Now NodeDaemon::now() const {
  timespec mono{}, wall{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &wall);
  return Now{static_cast<uint64_t>(mono.tv_sec) * 1000 + static_cast<uint64_t>(mono.tv_nsec) / 1000000,
             static_cast<uint64_t>(wall.tv_sec)};
}

Expected<std::unique_ptr<NodeDaemon>, std::string> NodeDaemon::start(uv_loop_t* loop, const NodeConfig& config) {
  auto redis_auth = read_redis_auth(config);
  if (!redis_auth) return Unexpected(redis_auth.error());
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon);
  daemon->loop_ = loop;
  daemon->config_ = config;

  auto storage_failure = [&](const storage::StoreError& error) {
    return Unexpected("cannot open the node's database in " + config.database_directory + ": " +
                      std::string(storage::to_string(error.code)) + " (" + error.detail + ")");
  };
  auto store = AccountStore::open(config.database_directory, config.map_size);
  if (!store) return storage_failure(store.error());
  daemon->store_ = std::move(*store);
  NodeSettings settings = config.settings;
  use_card_issuers(settings, config.directory);
  // Links stay below the descriptor limit, so the node refuses one with a
  // clear notice rather than failing accept() for everyone (libuv's spare-fd
  // trick then only covers what else the process opens).
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    constexpr rlim_t reserved = 64;  // listeners, LMDB, the STUN socket, the loop, the thread pool
    size_t fit = files.rlim_cur > reserved * 2 ? static_cast<size_t>(files.rlim_cur - reserved) : 16;
    if (settings.max_links > fit) {
      log::info() << "limits.max_links lowered from " << settings.max_links << " to " << fit
                  << " (the descriptor limit is " << files.rlim_cur << ")";
      settings.max_links = fit;
    }
  }
  daemon->max_links_ = settings.max_links;
  if (!config.postgres.empty()) {
    // Cluster mode shares accounts, agents, the directory, voicemail and the card ledger (docs/cluster.md).
    cluster::PgAccountDirectory::Options account_options;
    account_options.cache_entries = config.postgres_account_cache;
    auto accounts = cluster::PgAccountDirectory::open(loop, config.postgres, account_options);
    if (!accounts)
      return Unexpected("cannot use PostgreSQL for accounts: " + std::string(cluster::to_string(accounts.error().code)) +
                        ": " + accounts.error().detail);
    daemon->shared_accounts_ = std::move(*accounts);
    daemon->shared_accounts_->set_removed_id_quarantine_days(settings.removed_id_quarantine_days);
    daemon->shared_account_admin_ = std::make_unique<cluster::PgSharedAccountAdmin>(daemon->shared_accounts_->reader());
    daemon->shared_agents_ = std::make_unique<cluster::PgAgentDirectory>(daemon->shared_accounts_->reader());
    daemon->shared_voicemail_ = std::make_unique<cluster::PgVoicemailBoxes>(*daemon->shared_accounts_);
    daemon->shared_cards_ = std::make_unique<cluster::PgCardLedgerStore>(*daemon->shared_accounts_);
  }
  auto core = NodeCore::open(*daemon->store_, settings, daemon->shared_accounts_.get());
  if (!core) return storage_failure(core.error());
  daemon->core_ = std::move(*core);
  daemon->core_->use_shared_agents(daemon->shared_agents_.get());
  daemon->core_->use_shared_voicemail(daemon->shared_voicemail_.get());
  daemon->core_->use_shared_cards(daemon->shared_cards_.get());
  daemon->core_->set_audit_sink(daemon->audit_log_);

  security::TlsContext::ServerOptions tls_options;
  tls_options.certificate_chain_file = config.certificate_file;
  tls_options.private_key_file = config.private_key_file;
  auto tls = security::TlsContext::server(tls_options);
  if (!tls) return Unexpected("TLS: " + tls.error().detail);
  daemon->tls_ = *tls;

  tls_options.client_ca_file = config.ca_certificate_file;
  auto agent_tls = security::TlsContext::server(tls_options);
  if (!agent_tls) return Unexpected("TLS (agent port): " + agent_tls.error().detail);
  daemon->agent_tls_ = *agent_tls;

  auto listen = [&](uv_tcp_t*& handle, const proto::SocketAddress& at, uv_connection_cb callback) -> std::string {
    handle = new uv_tcp_t;
    uv_tcp_init(loop, handle);
    handle->data = daemon.get();
    sockaddr_storage address{};
    transport::to_sockaddr(at, &address);
    int rc = uv_tcp_bind(handle, reinterpret_cast<const sockaddr*>(&address), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle), 1024, callback);
    return rc == 0 ? std::string() : "listen on " + at.to_string() + ": " + uv_strerror(rc);
  };
  for (auto error : {listen(daemon->listener_, config.listen, on_connection),
                     listen(daemon->agent_listener_, config.agent_listen, on_agent_connection)}) {
    if (!error.empty()) {
      daemon->shutdown();
      return Unexpected(error);
    }
  }

  if (auto error = daemon->start_web()) {
    daemon->shutdown();
    return Unexpected(*error);
  }

  daemon->stun_responder_ = std::make_unique<StunBindingResponder>(daemon->config_.settings.software);
  NodeDaemon* self = daemon.get();
  auto stun = transport::UdpSocket::bind(loop, config.stun_listen, [self](ByteView datagram, const sockaddr* from) {
    if (self->stun_responder_->answer(datagram, transport::from_sockaddr(from), self->stun_reply_))
      self->stun_->send(self->stun_reply_, from);
  });
  if (!stun) {
    daemon->shutdown();
    return Unexpected("STUN: " + stun.error());
  }
  daemon->stun_ = std::move(*stun);

  if (!config.cluster_redis.empty()) {
    ClusterOptions options;
    for (const auto& server : config.cluster_redis) options.redis.push_back(*parse_redis_endpoint(server));
    options.node_name = config.cluster_node_name;
    options.redis_auth = std::move(*redis_auth);
    ClusterRelay::Hooks hooks;
    hooks.now = [self] { return self->now(); };
    hooks.send_to_link = [self](LinkId link, ByteView message) {
      auto it = self->links_.find(link);
      if (it == self->links_.end()) return false;
      it->second->send(message);
      return true;
    };
    hooks.drain = [self] { self->drain(); };
    if (self->shared_agents_) {
      hooks.enrolled_route = [self](const std::string& user_id) { return self->shared_agents_->route_of(user_id); };
    } else {
      // Each node's own LMDB holds the enrolments (every node enrolled alike; docs/cluster.md).
      auto registry = AgentRegistry::open(self->store_->environment());
      if (!registry) {
        daemon->shutdown();
        return storage_failure(registry.error());
      }
      using RouteRead = Expected<std::optional<std::string>, storage::StoreError>;
      hooks.enrolled_route = [self, registry = std::make_shared<AgentRegistry>(std::move(*registry))](
                                 const std::string& user_id) -> RouteRead {
        auto txn = self->store_->begin_read();
        if (!txn) return Unexpected(txn.error());
        return registry->route_of(*txn, user_id);
      };
    }
    daemon->cluster_ = std::make_unique<ClusterRelay>(loop, *daemon->core_, std::move(options), std::move(hooks));
    daemon->cluster_->start();
  }

  daemon->timer_ = new uv_timer_t;
  uv_timer_init(loop, daemon->timer_);
  daemon->timer_->data = self;
  daemon->check_ = new uv_check_t;
  uv_check_init(loop, daemon->check_);
  daemon->check_->data = self;
  uv_check_start(daemon->check_, on_check);
  daemon->turn_log_ = std::make_unique<transport::TurnLogHold>(loop);
  daemon->audit_log_.hold_lines_with([self] {
    if (self->turn_log_) self->turn_log_->hold();
  });
  daemon->rearm_timer();
  return daemon;
}

NodeDaemon::~NodeDaemon() { shutdown(); }

static proto::SocketAddress bound_address(const uv_tcp_t* handle) {
  sockaddr_storage storage{};
  int length = sizeof storage;
  uv_tcp_getsockname(handle, reinterpret_cast<sockaddr*>(&storage), &length);
  return transport::from_sockaddr(reinterpret_cast<sockaddr*>(&storage));
}

proto::SocketAddress NodeDaemon::tls_address() const { return bound_address(listener_); }
proto::SocketAddress NodeDaemon::agent_address() const { return bound_address(agent_listener_); }

void NodeDaemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (core_) core_->commit_turn();  // acknowledged or not, nothing half-written stays open
  // The turn in flight is answered (into core_'s actions) and the worker stops.
  if (shared_accounts_) shared_accounts_->close();
  if (core_) {
    log_storage_faults(core_->take_storage_faults());
    core_->announce_shutdown();
    for (auto& action : core_->take_actions()) {
      auto it = links_.find(action.link);
      if (it != links_.end() && action.kind == NodeAction::Kind::send) it->second->send(action.message);
    }
  }
  closing_links_ = std::move(links_);
  links_.clear();
  std::vector<transport::TlsLink*> closing;
  for (auto& [id, link] : closing_links_) closing.push_back(link);
  for (auto* link : closing) link->close("node shutting down");  // on_closed may erase from closing_links_
  if (!closing_links_.empty()) {
    shutdown_timer_ = new uv_timer_t;
    uv_timer_init(loop_, shutdown_timer_);
    shutdown_timer_->data = this;
    uv_timer_start(
        shutdown_timer_,
        [](uv_timer_t* timer) {
          auto* self = static_cast<NodeDaemon*>(timer->data);
          std::vector<transport::TlsLink*> left;
          for (auto& [id, link] : self->closing_links_) left.push_back(link);
          for (auto* link : left) link->abort("shutdown grace period over");
          close_and_delete(self->shutdown_timer_);
          self->shutdown_timer_ = nullptr;
        },
        1000, 0);
  }
  if (web_server_) web_server_->close();
  close_and_delete(listener_);
  listener_ = nullptr;
  close_and_delete(agent_listener_);
  agent_listener_ = nullptr;
  close_and_delete(timer_);
  timer_ = nullptr;
  close_and_delete(check_);
  check_ = nullptr;
  turn_log_.reset();
  stun_.reset();
  if (cluster_) cluster_->shutdown();
}

void NodeDaemon::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<NodeDaemon*>(server->data);
  if (status != 0) {
    log::warn() << "accept: " << uv_strerror(status);
    return;
  }
  self->accept_link(false);
}

void NodeDaemon::on_agent_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<NodeDaemon*>(server->data);
  if (status != 0) {
    log::warn() << "accept (agent port): " << uv_strerror(status);
    return;
  }
  self->accept_link(true);
}

std::shared_ptr<const transport::LinkCallbacks> NodeDaemon::make_link_callbacks(bool agent) {
  auto shared = std::make_shared<transport::LinkCallbacks>();
  transport::LinkCallbacks& callbacks = *shared;
  callbacks.on_ready = [this, agent](transport::TlsLink& link) {
    // A close the node asked for before TLS was up: the notice is out now.
    if (close_when_ready_.erase(link.id()) > 0) {
      link.close("refused");
      return;
    }
    if (agent) {
      // The TLS context verified the certificate against the deployment CA.
      auto name = link.peer_common_name();
      if (!name) {
        link.close("agent certificate has no common name");
        return;
      }
      log::info() << "agent " << *name << " connected from " << link.peer_address().to_string();
      core_->agent_link_ready(link.id(), *name, now());
    }
  };
  callbacks.on_message = [this, agent](transport::TlsLink& link, ByteView message) {
    // Cluster mode: a terminal's lookup or call for a link on another node goes there.
    if (!agent && cluster_ && cluster_->take_message(link.id(), message, link.peer_address())) return;
    core_->message(link.id(), message, now());
  };
  callbacks.on_closed = [this](transport::TlsLink& link, std::string_view reason) {
    close_when_ready_.erase(link.id());
    if (links_.erase(link.id()) == 0) {
      closing_links_.erase(link.id());
      return;
    }
    if (link.user_data != nullptr) log::info() << "agent link from " << link.peer_address().to_string() << " closed: " << reason;
    else if (bad_input_log.allow()) log::debug() << "link " << link.id() << " from " << link.peer_address().to_string()
                                                 << " closed: " << reason;
    core_->link_closed(link.id(), now());
    if (cluster_) cluster_->link_closed(link.id());
  };
  return shared;
}

void NodeDaemon::accept_link(bool agent) {
  auto& callbacks = agent ? agent_link_callbacks_ : terminal_link_callbacks_;
  if (!callbacks) callbacks = make_link_callbacks(agent);
  auto* link = transport::TlsLink::accept(reinterpret_cast<uv_stream_t*>(agent ? agent_listener_ : listener_),
                                          agent ? agent_tls_ : tls_, callbacks);
  if (link == nullptr) return;
  if (agent) link->user_data = this;  // marks agent links for logging
  links_[link->id()] = link;
  core_->link_opened(link->id(), link->peer_address(), now());
}

std::string NodeDaemon::metrics_text(size_t web_sessions) {
  NodeMetricsInput input;
  input.counters = core_->counters();
  input.agent_links = core_->agent_link_count();
  size_t all_links = core_->link_count();
  // Web sessions are links of the core too, with no socket of their own.
  size_t not_terminal = input.agent_links + web_sessions;
  input.terminal_links = all_links >= not_terminal ? all_links - not_terminal : 0;
  input.web_sessions = web_sessions;
  input.presence = core_->presence().size();
  input.stun = stun_responder_->counters();
  input.commit_latency = commit_latency_;
  constexpr uint64_t kVoicemailUsageMaxAgeMs = 30'000;
  uint64_t now_ms = uv_now(loop_);
  if (!voicemail_usage_ || now_ms - voicemail_usage_read_ms_ >= kVoicemailUsageMaxAgeMs) {
    auto usage = core_->voicemail_usage();
    voicemail_usage_ = usage ? std::optional(*usage) : std::nullopt;
    voicemail_usage_read_ms_ = now_ms;
  }
  input.voicemail = voicemail_usage_;
  if (web_api_) input.browser_calls = web_api_->browser_call_counters();
  return node_metrics_text(input);
}

void NodeDaemon::on_check(uv_check_t* check) { static_cast<NodeDaemon*>(check->data)->drain(); }

// Runs once per loop turn after I/O: the group commit, then every reply.
void NodeDaemon::drain() {
  if (stopping_) return;
  // A web session's answer can be the next request (a voicemail upload's
  // chunks): rounds go on until the core has nothing left, each one a group
  // commit of its own. Terminal links never ask twice in one turn.
  for (int round = 0; round < 1000; ++round) {
    uint64_t commits_before = core_->counters().commits;
    uint64_t started_ns = uv_hrtime();
    core_->commit_turn();
    // Turns that wrote nothing commit nothing: only real commits are timed.
    if (core_->counters().commits != commits_before) commit_latency_.record_ns(uv_hrtime() - started_ns);
    log_storage_faults(core_->take_storage_faults());
    run_password_jobs();
    run_relay_name_lookups();
    // Presence events: the event sockets' lookups join this round's actions.
    if (web_api_) {
      // Most turns change nothing: no clock read for them.
      if (auto changed = core_->take_presence_changes(); !changed.empty()) web_api_->presence_changed(changed, now());
      if (auto changed = core_->take_mailbox_changes(); !changed.empty()) web_api_->mailbox_changed(changed, now());
    }
    if (cluster_) cluster_->write_presence();
    auto actions = core_->take_actions();
    if (actions.empty()) break;
    for (auto& action : actions) {
      if (cluster_ && ClusterRelay::owns_link(action.link)) {
        cluster_->core_action(action);
        continue;
      }
      if (web_api_ && web_api_->owns_link(action.link)) {
        web_api_->core_action(action, now());
        continue;
      }
      deliver(action);
    }
  }
  rearm_timer();
}

void NodeDaemon::deliver(const NodeAction& action) {
  auto it = links_.find(action.link);
  if (it == links_.end()) return;
  if (action.kind == NodeAction::Kind::send) {
    it->second->send(action.message);
  } else if (!it->second->ready() && links_.size() <= max_links_ + kRefusalMargin &&
             close_when_ready_.insert(action.link).second) {
    // Held until the handshake completes, so the notice before it is read;
    // a second close (the login deadline) cuts it off. Past the margin a
    // flood is cut at once: descriptors stay below the limit.
  } else {
    close_when_ready_.erase(action.link);
    it->second->close(action.reason);
  }
}

void NodeDaemon::run_password_jobs() {
  for (auto& job : core_->take_password_jobs()) {
    auto* work = new PasswordWork;
    work->daemon = this;
    work->job = std::move(job);
    work->request.data = work;
    ++jobs_in_flight_;
    uv_queue_work(
        loop_, &work->request,
        [](uv_work_t* request) {
          auto* w = static_cast<PasswordWork*>(request->data);
          w->result = run_password_job(w->job);
        },
        [](uv_work_t* request, int status) {
          std::unique_ptr<PasswordWork> w(static_cast<PasswordWork*>(request->data));
          --w->daemon->jobs_in_flight_;
          if (status != 0 || w->daemon->stopping_) return;
          w->daemon->core_->password_job_done(w->result, w->daemon->now());
        });
  }
}

// Card relays named by host name (node_cards.cpp): looked up on libuv's
// thread pool, never on the loop; the core keeps the answers for their TTL.
void NodeDaemon::run_relay_name_lookups() {
  for (auto& host : core_->take_relay_name_lookups()) {
    auto* work = new RelayNameWork;
    work->daemon = this;
    work->host = std::move(host);
    work->request.data = work;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    ++jobs_in_flight_;
    int started = uv_getaddrinfo(
        loop_, &work->request,
        [](uv_getaddrinfo_t* request, int status, addrinfo* result) {
          std::unique_ptr<RelayNameWork> w(static_cast<RelayNameWork*>(request->data));
          std::vector<proto::SocketAddress> addresses;
          if (status == 0) addresses = relay_addresses(result);
          uv_freeaddrinfo(result);
          --w->daemon->jobs_in_flight_;
          if (status == UV_ECANCELED || w->daemon->stopping_) return;
          if (w->daemon->core_->relay_name_resolved(w->host, addresses, w->daemon->now()))
            log::warn() << "card relay " << w->host << " does not resolve ("
                        << (status != 0 ? uv_strerror(status) : "no IPv4 or IPv6 address")
                        << "): card calls through it get the node's own [turn] servers until it does";
        },
        work->host.c_str(), nullptr, &hints);
    if (started != 0) {
      --jobs_in_flight_;
      std::unique_ptr<RelayNameWork> failed(work);
      if (core_->relay_name_resolved(failed->host, {}, now()))
        log::warn() << "card relay " << failed->host << ": lookup not started (" << uv_strerror(started) << ")";
    }
  }
}

void NodeDaemon::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<NodeDaemon*>(timer->data);
  self->core_->tick(self->now());
  if (self->web_api_) self->web_api_->tick(self->now());
  // The check handle runs only after the next poll, which may block for a
  // long time: send what the deadlines produced now.
  self->drain();
}

void NodeDaemon::rearm_timer() {
  if (timer_ == nullptr) return;
  auto deadline = core_->next_deadline();
  if (auto web_deadline = web_api_ ? web_api_->next_deadline() : std::nullopt)
    deadline = deadline ? std::min(*deadline, *web_deadline) : *web_deadline;
  // Most turns (a keepalive answered) leave the earliest deadline where it
  // was: the armed timer stands. A timer that fired is armed again even for
  // the same deadline (it fired a millisecond early by the loop's clock).
  bool armed = uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)) != 0;
  if (deadline == armed_deadline_ && armed == deadline.has_value()) return;
  armed_deadline_ = deadline;
  if (!deadline) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t current = now().mono_ms;
  uv_timer_start(timer_, on_timer, *deadline > current ? *deadline - current : 0, 0);
}

}  // namespace tsunagu::rendezvous
