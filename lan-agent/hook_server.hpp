// The agent's end of the hook socket (a Unix stream socket). Each connection
// carries one request (hook_protocol.hpp). Callers are checked with
// SO_PEERCRED against HookAccess. Events read during one loop turn are handed
// to `commit` together (one table batch: group commit) in the loop's check
// phase, and every hook gets its ack only after that commit.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "allocation/lease_event.hpp"
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
  // answers on it) with mode 0666: access is decided by SO_PEERCRED.
  static Expected<std::unique_ptr<HookServer>, std::string> start(uv_loop_t* loop, const std::string& path,
                                                                  HookAccess access, Handlers handlers);
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
  struct Connection;
  HookServer(uv_loop_t* loop, std::string path, HookAccess access, Handlers handlers)
      : loop_(loop), path_(std::move(path)), access_(std::move(access)), handlers_(std::move(handlers)) {}
  void on_connection();
  void on_request(Connection* connection);
  // Adds bytes read to the request; false (and NAK sent) when over the limit.
  bool append_request(Connection* connection, const char* data, size_t size);
  // Reads what the hook has written so far without blocking; true when the
  // connection needs nothing more from the loop (EOF seen, or refused).
  bool read_without_waiting(Connection* connection, int fd);
  void commit_pending();
  void finish(Connection* connection, std::string reply);
  void release_handle();

  uv_loop_t* loop_;
  std::string path_;
  HookAccess access_;
  Handlers handlers_;
  uv_pipe_t listener_{};
  uv_check_t check_{};
  std::vector<Connection*> waiting_;  // requests whose events await the commit
  std::vector<alloc::LeaseEvent> pending_events_;
  size_t open_connections_ = 0;
  unsigned open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
  HookServerStats stats_;
  log::RateLimit refused_log_{5, std::chrono::seconds(60)};
};

}  // namespace tsunagu::lanagent
