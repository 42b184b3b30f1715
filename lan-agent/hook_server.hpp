// The agent's end of the hook socket (a Unix stream socket). Each connection
// carries one request (hook_protocol.hpp). Callers are checked with
// SO_PEERCRED against HookAccess. Events read during one loop turn are handed
// to `commit` together (one table batch: group commit) in the loop's check
// phase, and every hook gets its ack only after that commit.
//
// One event per connection is the common call (dnsmasq and ISC start a hook
// per lease), so a connection costs what its system calls cost and no more:
// the agent accepts on its own listening socket, reads a request the caller
// has already written and half-closed straight away (it never enters epoll),
// answers it with one send() after the commit and closes it; only a request
// still arriving gets a libuv pipe, and one sweep timer cuts slow callers.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "allocation/lease_event.hpp"
#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "base/log.hpp"
#include "lan-agent/hook_access.hpp"

namespace tsunagu::lanagent {

struct HookServerStats {
  uint64_t connections = 0, refused_peers = 0, bad_requests = 0, events = 0, commits = 0, failed_commits = 0;
};

class HookServer {
 public:
  struct Handlers {
    // Applies the events of one loop turn in one batch; true once committed.
    std::function<bool(std::vector<alloc::LeaseEvent>&)> commit;
    // The dnsmasq `init` listing.
    std::function<std::string()> init_listing;
  };

  // Binds the socket (replacing a stale one; refusing when another agent
  // answers on it) with mode 0666: access is decided by SO_PEERCRED. A caller
  // that has not finished its request `request_timeout_ms` (+ up to a quarter
  // of it: one sweep timer checks them) after it was accepted is cut off.
  static Expected<std::unique_ptr<HookServer>, std::string> start(uv_loop_t* loop, const std::string& path,
                                                                  HookAccess access, Handlers handlers,
                                                                  uint64_t request_timeout_ms = 5000);
  HookServer(const HookServer&) = delete;
  HookServer& operator=(const HookServer&) = delete;
  ~HookServer();

  // Commits what is pending, closes every handle and removes the socket file;
  // on_closed runs when all handles are closed.
  void close(std::function<void()> on_closed);
  const HookServerStats& stats() const { return stats_; }
  // A reload: who may connect from now on (open connections were checked already).
  void set_access(HookAccess access) { access_ = std::move(access); }

 private:
  // A caller whose request was not all there when it was accepted: libuv
  // reads the rest. Callers whose request was complete never get one.
  struct Connection;
  // A request waiting for the turn's commit: the bare socket, or a Connection.
  struct Waiting {
    int fd = -1;
    Connection* connection = nullptr;
  };
  HookServer(uv_loop_t* loop, std::string path, HookAccess access, Handlers handlers, uint64_t request_timeout_ms)
      : loop_(loop), path_(std::move(path)), access_(std::move(access)), handlers_(std::move(handlers)),
        request_timeout_ms_(request_timeout_ms) {}
  void accept_pending();
  void serve_accepted(int fd);
  // A complete request: nullopt when its events joined this turn's commit,
  // else the answer to send now (empty: close without one).
  std::optional<std::string> take_request(ByteView request);
  // Sends `reply` on a bare socket and closes it; what does not fit in the
  // socket's buffer (a long init listing) goes through a Connection.
  void answer_and_close(int fd, std::string reply);
  // A libuv pipe for the socket; nullptr (the socket closed) when that fails.
  Connection* adopt(int fd);
  // Reads the rest of a request begun in scratch_, until EOF or the deadline.
  void read_rest(Connection* connection);
  void on_request_read(Connection* connection);
  void stop_reading(Connection* connection);
  void sweep();
  void update_sweep_timer();
  void commit_pending();
  void finish(Connection* connection, std::string reply);
  void connection_closed();
  void release_handle();

  uv_loop_t* loop_;
  std::string path_;
  HookAccess access_;
  Handlers handlers_;
  uint64_t request_timeout_ms_;
  int listen_fd_ = -1;
  uv_poll_t listener_{};
  bool listener_paused_ = false;  // out of descriptors: the sweep timer retries
  uv_check_t check_{};
  uv_timer_t sweep_timer_{};
  bool sweep_timer_open_ = false;
  std::vector<Connection*> reading_;  // oldest first: each one's deadline is later
  std::vector<Waiting> waiting_;      // requests whose events await the commit
  std::vector<alloc::LeaseEvent> pending_events_;
  Bytes scratch_;  // the request being read at accept, reused
  size_t open_connections_ = 0;
  unsigned open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
  HookServerStats stats_;
  log::RateLimit refused_log_{5, std::chrono::seconds(60)};
};

}  // namespace tsunagu::lanagent
