#include "lan-agent/hook_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lan-agent/hook_protocol.hpp"

namespace tsunagu::lanagent {

inline constexpr size_t kMaxConnections = 256;
inline constexpr uint64_t kConnectionTimeoutMs = 5000;

struct HookServer::Connection {
  HookServer* server = nullptr;
  uv_pipe_t pipe{};
  uv_timer_t timer{};
  uv_write_t write{};
  Bytes request;
  std::string reply;
  unsigned open = 0;  // handles still to close (pipe, timer)
  bool done = false;
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
                                                                     HookAccess access, Handlers handlers) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) return Unexpected(path + ": too long for a Unix socket");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Unexpected(path + ": exists and is not a socket; refusing to replace it");
    if (socket_in_use(path)) return Unexpected(path + ": another agent is listening on it");
    ::unlink(path.c_str());
  }
  std::unique_ptr<HookServer> server(new HookServer(loop, path, std::move(access), std::move(handlers)));
  HookServer* self = server.get();
  uv_pipe_init(loop, &self->listener_, 0);
  self->listener_.data = self;
  uv_check_init(loop, &self->check_);
  self->check_.data = self;
  self->open_handles_ = 2;
  int rc = uv_pipe_bind(&self->listener_, path.c_str());
  if (rc == 0) rc = ::chmod(path.c_str(), 0666) == 0 ? 0 : -errno;
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&self->listener_), 128, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<HookServer*>(s->data)->on_connection();
    });
  if (rc != 0) {
    std::string error = path + ": " + uv_strerror(rc);
    // The handles close on the next loop run; the server must live until then.
    self->close([self] { delete self; });
    server.release();
    return Unexpected(error);
  }
  uv_check_start(&self->check_, [](uv_check_t* c) { static_cast<HookServer*>(c->data)->commit_pending(); });
  // The check handle must not keep the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&self->check_));
  return server;
}

HookServer::~HookServer() = default;

void HookServer::on_connection() {
  auto* c = new Connection;
  c->server = this;
  uv_pipe_init(loop_, &c->pipe, 0);
  uv_timer_init(loop_, &c->timer);
  c->pipe.data = c;
  c->timer.data = c;
  c->open = 2;
  ++open_connections_;
  ++stats_.connections;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    finish(c, {});
    return;
  }
  uv_os_fd_t fd = -1;
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || !access_.allows(peer.uid, peer.gid)) {
    ++stats_.refused_peers;
    if (refused_log_.allow())
      log::warn() << "hook socket: refused a connection from uid " << peer.uid << " gid " << peer.gid
                  << " (not root, hook.allowed_users or hook.allowed_groups)";
    finish(c, {});
    return;
  }
  if (open_connections_ > kMaxConnections || closing_) {
    finish(c, std::string(1, static_cast<char>(kNak)));
    return;
  }
  uv_timer_start(&c->timer, [](uv_timer_t* t) {
    auto* conn = static_cast<Connection*>(t->data);
    conn->server->finish(conn, {});
  }, kConnectionTimeoutMs, 0);
  // A hook has usually written its whole request and half-closed by the time
  // it is accepted: read it now, and it joins this loop turn's commit without
  // the socket going through epoll (two epoll_ctl calls and two more turns).
  if (read_without_waiting(c, fd)) return;
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
        if (nread > 0) {
          conn->server->append_request(conn, buf->base, static_cast<size_t>(nread));
        } else if (nread == UV_EOF) {
          uv_read_stop(stream);
          conn->server->on_request(conn);
        } else if (nread < 0) {
          conn->server->finish(conn, {});
        }
      });
}

bool HookServer::append_request(Connection* c, const char* data, size_t size) {
  if (c->request.size() + size > kMaxHookRequestBytes) {
    ++stats_.bad_requests;
    finish(c, std::string(1, static_cast<char>(kNak)));
    return false;
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  c->request.insert(c->request.end(), bytes, bytes + size);
  return true;
}

bool HookServer::read_without_waiting(Connection* c, int fd) {
  char buffer[16384];
  while (true) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      if (!append_request(c, buffer, static_cast<size_t>(n))) return true;
      continue;
    }
    if (n == 0) {
      on_request(c);
      return true;
    }
    if (errno == EINTR) continue;
    return false;  // EAGAIN: the rest comes through libuv, which also reports errors
  }
}

void HookServer::on_request(Connection* c) {
  if (c->request.empty()) {
    finish(c, {});
    return;
  }
  if (c->request[0] == kRequestInit) {
    finish(c, handlers_.init_listing ? handlers_.init_listing() : std::string());
    return;
  }
  if (c->request[0] != kRequestEvents) {
    ++stats_.bad_requests;
    finish(c, std::string(1, static_cast<char>(kNak)));
    return;
  }
  auto events = decode_events_request(ByteView(c->request).subspan(1));
  if (!events) {
    ++stats_.bad_requests;
    if (refused_log_.allow()) log::warn() << "hook socket: bad request: " << events.error().detail;
    finish(c, std::string(1, static_cast<char>(kNak)));
    return;
  }
  stats_.events += events->size();
  for (auto& e : *events) pending_events_.push_back(std::move(e));
  uv_timer_stop(&c->timer);  // answered by the next commit, in this loop turn
  waiting_.push_back(c);
  // Once closing, the check handle that commits each turn is gone: a request
  // read after close() would wait for ever (no active handle keeps the loop
  // for it, so close() never finished). Commit it now.
  if (closing_) commit_pending();
}

void HookServer::commit_pending() {
  if (waiting_.empty()) return;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  auto events = std::move(pending_events_);
  pending_events_.clear();
  bool committed = events.empty() || (handlers_.commit && handlers_.commit(events));
  ++(committed ? stats_.commits : stats_.failed_commits);
  for (Connection* c : waiting) finish(c, std::string(1, static_cast<char>(committed ? kAck : kNak)));
}

void HookServer::finish(Connection* c, std::string reply) {
  if (c->done) return;
  c->done = true;
  uv_timer_stop(&c->timer);
  auto close_all = [](Connection* conn) {
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&conn->pipe), reinterpret_cast<uv_handle_t*>(&conn->timer)}) {
      uv_close(h, [](uv_handle_t* handle) {
        auto* cc = static_cast<Connection*>(handle->data);
        if (--cc->open != 0) return;
        HookServer* server = cc->server;
        delete cc;
        --server->open_connections_;
        server->release_handle();
      });
    }
  };
  if (reply.empty()) {
    close_all(c);
    return;
  }
  c->reply = std::move(reply);
  uv_buf_t buf = uv_buf_init(c->reply.data(), static_cast<unsigned>(c->reply.size()));
  c->write.data = c;
  int rc = uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->pipe), &buf, 1, [](uv_write_t* req, int) {
    auto* conn = static_cast<Connection*>(req->data);
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&conn->pipe), reinterpret_cast<uv_handle_t*>(&conn->timer)}) {
      uv_close(h, [](uv_handle_t* handle) {
        auto* cc = static_cast<Connection*>(handle->data);
        if (--cc->open != 0) return;
        HookServer* server = cc->server;
        delete cc;
        --server->open_connections_;
        server->release_handle();
      });
    }
  });
  if (rc != 0) close_all(c);
}

void HookServer::release_handle() {
  if (closing_ && open_handles_ == 0 && open_connections_ == 0 && on_closed_) {
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
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&listener_), reinterpret_cast<uv_handle_t*>(&check_)}) {
    h->data = this;
    uv_close(h, [](uv_handle_t* handle) {
      auto* server = static_cast<HookServer*>(handle->data);
      --server->open_handles_;
      server->release_handle();
    });
  }
}

}  // namespace tsunagu::lanagent
