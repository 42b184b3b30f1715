#include "lan-agent/hook_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lan-agent/hook_protocol.hpp"

namespace tsunagu::lanagent {

inline constexpr size_t kMaxConnections = 256;
// Accepts per readable listener and loop turn: the rest wait for the next
// turn, so one turn's batch (and the time to its ACKs) stays bounded.
inline constexpr int kAcceptsPerTurn = 128;

struct HookServer::Connection {
  HookServer* server = nullptr;
  uv_pipe_t pipe{};
  uv_write_t write{};
  Bytes request;
  std::string reply;
  uint64_t deadline_ms = 0;  // loop time
  bool done = false;

  // Closes the pipe (and its socket); the Connection goes with it.
  void close_pipe() {
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe), [](uv_handle_t* handle) {
      auto* self = static_cast<Connection*>(handle->data);
      HookServer* owner = self->server;
      delete self;
      owner->connection_closed();
    });
  }
};

namespace {

// Is something answering on the socket at path (another agent)?
bool socket_in_use(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  bool in_use = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return in_use;
}

}  // namespace

Expected<std::unique_ptr<HookServer>, std::string> HookServer::start(uv_loop_t* loop, const std::string& path,
                                                                     HookAccess access, Handlers handlers,
                                                                     uint64_t request_timeout_ms) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) return Unexpected(path + ": too long for a Unix socket");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Unexpected(path + ": exists and is not a socket; refusing to replace it");
    if (socket_in_use(path)) return Unexpected(path + ": another agent is listening on it");
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unexpected(path + ": " + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  std::string failed;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    failed = path + ": " + std::strerror(errno);
  } else if (::chmod(path.c_str(), 0666) != 0 || ::listen(fd, 128) != 0) {
    failed = path + ": " + std::strerror(errno);
    ::unlink(path.c_str());
  }
  if (!failed.empty()) {
    ::close(fd);
    return Unexpected(failed);
  }
  std::unique_ptr<HookServer> server(
      new HookServer(loop, path, std::move(access), std::move(handlers), request_timeout_ms));
  HookServer* self = server.get();
  self->listen_fd_ = fd;
  if (int rc = uv_poll_init(loop, &self->listener_, fd); rc != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return Unexpected(path + ": " + uv_strerror(rc));
  }
  self->listener_.data = self;
  uv_check_init(loop, &self->check_);
  self->check_.data = self;
  uv_timer_init(loop, &self->sweep_timer_);
  self->sweep_timer_.data = self;
  self->sweep_timer_open_ = true;
  self->open_handles_ = 3;
  uv_poll_start(&self->listener_, UV_READABLE, [](uv_poll_t* p, int status, int) {
    if (status == 0) static_cast<HookServer*>(p->data)->accept_pending();
  });
  uv_check_start(&self->check_, [](uv_check_t* c) { static_cast<HookServer*>(c->data)->commit_pending(); });
  // The check handle must not keep the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&self->check_));
  return server;
}

HookServer::~HookServer() = default;

void HookServer::accept_pending() {
  for (int i = 0; i < kAcceptsPerTurn && !closing_; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      serve_accepted(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    // Out of descriptors or memory: the listener stays readable, so polling it
    // now would spin; the sweep timer tries again shortly.
    if (refused_log_.allow()) log::warn() << "hook socket: accept: " << std::strerror(errno);
    uv_poll_stop(&listener_);
    listener_paused_ = true;
    update_sweep_timer();
    return;
  }
}

void HookServer::serve_accepted(int fd) {
  ++open_connections_;
  ++stats_.connections;
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || !access_.allows(peer.uid, peer.gid)) {
    ++stats_.refused_peers;
    if (refused_log_.allow())
      log::warn() << "hook socket: refused a connection from uid " << peer.uid << " gid " << peer.gid
                  << " (not root, hook.allowed_users or hook.allowed_groups)";
    answer_and_close(fd, {});
    return;
  }
  if (open_connections_ > kMaxConnections || closing_) {
    answer_and_close(fd, std::string(1, static_cast<char>(kNak)));
    return;
  }
  // A hook has usually written its whole request and half-closed by the time
  // it is accepted: read it now, and it joins this loop turn's commit without
  // the socket going through epoll.
  scratch_.clear();
  char buffer[16384];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      if (scratch_.size() + static_cast<size_t>(n) > kMaxHookRequestBytes) {
        ++stats_.bad_requests;
        answer_and_close(fd, std::string(1, static_cast<char>(kNak)));
        return;
      }
      const auto* bytes = reinterpret_cast<const std::byte*>(buffer);
      scratch_.insert(scratch_.end(), bytes, bytes + n);
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // The rest is still coming: libuv reads it (and reports errors).
      if (Connection* c = adopt(fd)) read_rest(c);
      return;
    }
    answer_and_close(fd, {});
    return;
  }
  if (auto reply = take_request(scratch_)) {
    answer_and_close(fd, std::move(*reply));
    return;
  }
  waiting_.push_back(Waiting{fd, nullptr});
}

std::optional<std::string> HookServer::take_request(ByteView request) {
  if (request.empty()) return std::string();
  if (request[0] == kRequestInit) return handlers_.init_listing ? handlers_.init_listing() : std::string();
  if (request[0] != kRequestEvents) {
    ++stats_.bad_requests;
    return std::string(1, static_cast<char>(kNak));
  }
  auto events = decode_events_request(request.subspan(1));
  if (!events) {
    ++stats_.bad_requests;
    if (refused_log_.allow()) log::warn() << "hook socket: bad request: " << events.error().detail;
    return std::string(1, static_cast<char>(kNak));
  }
  stats_.events += events->size();
  for (auto& e : *events) pending_events_.push_back(std::move(e));
  return std::nullopt;
}

void HookServer::answer_and_close(int fd, std::string reply) {
  size_t sent = 0;
  while (sent < reply.size()) {
    ssize_t n = ::send(fd, reply.data() + sent, reply.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (Connection* c = adopt(fd)) finish(c, reply.substr(sent));
        return;
      }
      break;  // the caller is gone
    }
  }
  ::close(fd);
  connection_closed();
}

HookServer::Connection* HookServer::adopt(int fd) {
  auto* c = new Connection;
  c->server = this;
  uv_pipe_init(loop_, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_pipe_open(&c->pipe, fd) == 0) return c;
  // The handle did not take the descriptor: close both on their own.
  c->done = true;
  ::close(fd);
  c->close_pipe();
  return nullptr;
}

void HookServer::read_rest(Connection* c) {
  c->request = scratch_;
  c->deadline_ms = uv_now(loop_) + request_timeout_ms_;
  reading_.push_back(c);
  update_sweep_timer();
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->pipe),
      [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
        buf->base = new char[suggested];
        buf->len = suggested;
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* conn = static_cast<Connection*>(stream->data);
        std::unique_ptr<char[]> owned(buf->base);
        if (conn->done) return;
        HookServer* server = conn->server;
        if (nread > 0) {
          if (conn->request.size() + static_cast<size_t>(nread) > kMaxHookRequestBytes) {
            ++server->stats_.bad_requests;
            server->finish(conn, std::string(1, static_cast<char>(kNak)));
            return;
          }
          const auto* bytes = reinterpret_cast<const std::byte*>(buf->base);
          conn->request.insert(conn->request.end(), bytes, bytes + nread);
        } else if (nread == UV_EOF) {
          uv_read_stop(stream);
          server->on_request_read(conn);
        } else if (nread < 0) {
          server->finish(conn, {});
        }
      });
}

void HookServer::on_request_read(Connection* c) {
  stop_reading(c);
  if (auto reply = take_request(c->request)) {
    finish(c, std::move(*reply));
    return;
  }
  waiting_.push_back(Waiting{-1, c});
  // Once closing, the check handle that commits each turn is gone: a request
  // read after close() would wait for ever (no active handle keeps the loop
  // for it, so close() never finished). Commit it now.
  if (closing_) commit_pending();
}

void HookServer::stop_reading(Connection* c) {
  auto it = std::find(reading_.begin(), reading_.end(), c);
  if (it == reading_.end()) return;
  reading_.erase(it);
  update_sweep_timer();
}

void HookServer::update_sweep_timer() {
  if (!sweep_timer_open_) return;
  bool needed = !reading_.empty() || listener_paused_;
  if (needed == (uv_is_active(reinterpret_cast<uv_handle_t*>(&sweep_timer_)) != 0)) return;
  if (!needed) {
    uv_timer_stop(&sweep_timer_);
    return;
  }
  uint64_t interval = std::max<uint64_t>(request_timeout_ms_ / 4, 1);
  uv_timer_start(&sweep_timer_, [](uv_timer_t* t) { static_cast<HookServer*>(t->data)->sweep(); }, interval, interval);
}

void HookServer::sweep() {
  if (listener_paused_ && !closing_) {
    listener_paused_ = false;
    uv_poll_start(&listener_, UV_READABLE, [](uv_poll_t* p, int status, int) {
      if (status == 0) static_cast<HookServer*>(p->data)->accept_pending();
    });
  }
  uint64_t now = uv_now(loop_);
  // Oldest first: stop at the first one still within its time.
  while (!reading_.empty() && reading_.front()->deadline_ms <= now) finish(reading_.front(), {});
  update_sweep_timer();
}

void HookServer::commit_pending() {
  if (waiting_.empty()) return;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  auto events = std::move(pending_events_);
  pending_events_.clear();
  bool committed = events.empty() || (handlers_.commit && handlers_.commit(events));
  ++(committed ? stats_.commits : stats_.failed_commits);
  std::string answer(1, static_cast<char>(committed ? kAck : kNak));
  for (const Waiting& w : waiting) {
    if (w.connection != nullptr)
      finish(w.connection, answer);
    else
      answer_and_close(w.fd, answer);
  }
}

void HookServer::finish(Connection* c, std::string reply) {
  if (c->done) return;
  c->done = true;
  stop_reading(c);
  if (reply.empty()) {
    c->close_pipe();
    return;
  }
  c->reply = std::move(reply);
  uv_buf_t buf = uv_buf_init(c->reply.data(), static_cast<unsigned>(c->reply.size()));
  c->write.data = c;
  int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1,
                    [](uv_write_t* req, int) { static_cast<Connection*>(req->data)->close_pipe(); });
  if (rc != 0) c->close_pipe();
}

void HookServer::connection_closed() {
  --open_connections_;
  release_handle();
}

void HookServer::release_handle() {
  if (!closing_ || open_connections_ != 0) return;
  if (sweep_timer_open_) {
    // The last slow caller is gone: the sweep timer closes last.
    sweep_timer_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), [](uv_handle_t* handle) {
      auto* server = static_cast<HookServer*>(handle->data);
      --server->open_handles_;
      server->release_handle();
    });
    return;
  }
  if (open_handles_ == 0 && on_closed_) {
    auto done = std::move(on_closed_);
    on_closed_ = nullptr;
    done();
  }
}

void HookServer::close(std::function<void()> on_closed) {
  if (closing_) return;
  commit_pending();
  closing_ = true;
  on_closed_ = std::move(on_closed);
  ::unlink(path_.c_str());
  listener_paused_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* handle) {
    auto* server = static_cast<HookServer*>(handle->data);
    ::close(server->listen_fd_);
    server->listen_fd_ = -1;
    --server->open_handles_;
    server->release_handle();
  });
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), [](uv_handle_t* handle) {
    auto* server = static_cast<HookServer*>(handle->data);
    --server->open_handles_;
    server->release_handle();
  });
  release_handle();
}

}  // namespace tsunagu::lanagent
