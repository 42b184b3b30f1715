#include "rendezvous/node_daemon.hpp"

#include <time.h>

#include "base/log.hpp"
#include "security/passwords.hpp"

namespace tsunagu::rendezvous {
namespace {

template <class Handle>
void close_and_delete(Handle* handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

struct PasswordWork {
  uv_work_t request{};
  NodeDaemon* daemon = nullptr;
  PasswordJob job;
  PasswordJobResult result;
};

log::RateLimit bad_input_log(20, std::chrono::seconds(10));

}  // namespace

Now NodeDaemon::now() const {
  timespec mono{}, wall{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &wall);
  return Now{static_cast<uint64_t>(mono.tv_sec) * 1000 + static_cast<uint64_t>(mono.tv_nsec) / 1000000,
             static_cast<uint64_t>(wall.tv_sec)};
}

Expected<std::unique_ptr<NodeDaemon>, std::string> NodeDaemon::start(uv_loop_t* loop, const NodeConfig& config) {
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon);
  daemon->loop_ = loop;
  daemon->config_ = config;

  auto store = AccountStore::open(config.database_directory, config.map_size);
  if (!store) return Unexpected("storage: " + store.error().detail);
  daemon->store_ = std::move(*store);
  daemon->core_ = std::make_unique<NodeCore>(*daemon->store_, config.settings);

  security::TlsContext::ServerOptions tls_options;
  tls_options.certificate_chain_file = config.certificate_file;
  tls_options.private_key_file = config.private_key_file;
  auto tls = security::TlsContext::server(tls_options);
  if (!tls) return Unexpected("TLS: " + tls.error().detail);
  daemon->tls_ = *tls;

  daemon->listener_ = new uv_tcp_t;
  uv_tcp_init(loop, daemon->listener_);
  daemon->listener_->data = daemon.get();
  sockaddr_storage address{};
  transport::to_sockaddr(config.listen, &address);
  int rc = uv_tcp_bind(daemon->listener_, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(daemon->listener_), 1024, on_connection);
  if (rc != 0) {
    std::string error = "listen on " + config.listen.to_string() + ": " + uv_strerror(rc);
    daemon->shutdown();
    return Unexpected(error);
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

  daemon->timer_ = new uv_timer_t;
  uv_timer_init(loop, daemon->timer_);
  daemon->timer_->data = self;
  daemon->check_ = new uv_check_t;
  uv_check_init(loop, daemon->check_);
  daemon->check_->data = self;
  uv_check_start(daemon->check_, on_check);
  daemon->rearm_timer();
  return daemon;
}

NodeDaemon::~NodeDaemon() { shutdown(); }

proto::SocketAddress NodeDaemon::tls_address() const {
  sockaddr_storage storage{};
  int length = sizeof storage;
  uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&storage), &length);
  return transport::from_sockaddr(reinterpret_cast<sockaddr*>(&storage));
}

void NodeDaemon::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (core_) {
    core_->commit_turn();  // acknowledged or not, nothing half-written stays open
    for (auto& action : core_->take_actions()) {
      auto it = links_.find(action.link);
      if (it != links_.end() && action.kind == NodeAction::Kind::send) it->second->send(action.message);
    }
  }
  auto links = std::move(links_);
  for (auto& [id, link] : links) link->close("node shutting down");
  close_and_delete(listener_);
  listener_ = nullptr;
  close_and_delete(timer_);
  timer_ = nullptr;
  close_and_delete(check_);
  check_ = nullptr;
  stun_.reset();
}

void NodeDaemon::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<NodeDaemon*>(server->data);
  if (status != 0) {
    log::warn() << "accept: " << uv_strerror(status);
    return;
  }
  self->accept_link();
}

void NodeDaemon::accept_link() {
  transport::LinkCallbacks callbacks;
  callbacks.on_message = [this](transport::TlsLink& link, ByteView message) {
    core_->message(link.id(), message, now());
  };
  callbacks.on_closed = [this](transport::TlsLink& link, std::string_view reason) {
    if (links_.erase(link.id()) == 0) return;
    if (bad_input_log.allow()) log::debug() << "link " << link.id() << " from " << link.peer_address().to_string()
                                            << " closed: " << reason;
    core_->link_closed(link.id(), now());
  };
  auto* link = transport::TlsLink::accept(reinterpret_cast<uv_stream_t*>(listener_), tls_, std::move(callbacks));
  if (link == nullptr) return;
  links_[link->id()] = link;
  core_->link_opened(link->id(), link->peer_address(), now());
}

void NodeDaemon::on_check(uv_check_t* check) { static_cast<NodeDaemon*>(check->data)->drain(); }

// Runs once per loop turn after I/O: the group commit, then every reply.
void NodeDaemon::drain() {
  if (stopping_) return;
  core_->commit_turn();
  run_password_jobs();
  for (auto& action : core_->take_actions()) {
    auto it = links_.find(action.link);
    if (it == links_.end()) continue;
    if (action.kind == NodeAction::Kind::send) {
      it->second->send(action.message);
    } else {
      it->second->close(action.reason);
    }
  }
  rearm_timer();
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
          w->result.id = w->job.id;
          if (w->job.kind == PasswordJob::Kind::verify)
            w->result.verified = security::verify_password(w->job.password, w->job.stored_hash);
          else
            w->result.hash = security::hash_password(w->job.password, w->job.parameters);
        },
        [](uv_work_t* request, int status) {
          std::unique_ptr<PasswordWork> w(static_cast<PasswordWork*>(request->data));
          --w->daemon->jobs_in_flight_;
          if (status != 0 || w->daemon->stopping_) return;
          w->daemon->core_->password_job_done(w->result, w->daemon->now());
        });
  }
}

void NodeDaemon::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<NodeDaemon*>(timer->data);
  self->core_->tick(self->now());
}

void NodeDaemon::rearm_timer() {
  if (timer_ == nullptr) return;
  auto deadline = core_->next_deadline();
  if (!deadline) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t current = now().mono_ms;
  uv_timer_start(timer_, on_timer, *deadline > current ? *deadline - current : 0, 0);
}

}  // namespace tsunagu::rendezvous
