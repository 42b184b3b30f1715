// Which node holds each user's and agent's link, in Redis: one key per holder,
// its value the node ID, its TTL renewed by the link's keepalives, so the rows
// of a node that dies expire on their own.
//
//   presence:{alice@acme}  -> "node-a"   (a terminal's user)
//   agent:{acme}           -> "node-b"   (a LAN agent's domain)
//   prefix:{+81-6-1234-}   -> "node-b"   (a LAN agent's number prefix)
//
// The braces are a Redis Cluster hash tag: the key's slot is the holder's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "cluster/redis/redis_client.hpp"

namespace tsunagu::cluster {

// agent: a domain an agent link holds; prefix: a number prefix it holds
// (`+` or a digit first, so never a domain: the two kinds' keys differ anyway).
enum class HolderKind { user, agent, prefix };

std::string presence_key(HolderKind kind, std::string_view holder);

// What a call to Redis came to; `unavailable` is the caller's 503.
enum class PresenceOutcome { done, held_elsewhere, not_ours, unavailable, failed };

class PresenceDirectory {
 public:
  // ttl_ms: how long a row outlives its last refresh. min_refresh_interval_ms:
  // a keepalive sooner than this after the row's last confirmed write costs no
  // Redis command (0: every keepalive refreshes). The refresh is a Lua script,
  // Redis' dearest command here (docs/cluster.md), so a large deployment
  // refreshes less often than it keepalives, with a TTL a few times this.
  PresenceDirectory(uv_loop_t* loop, RedisClient& redis, std::string node_id, uint64_t ttl_ms,
                    uint64_t min_refresh_interval_ms = 0);
  ~PresenceDirectory();
  PresenceDirectory(const PresenceDirectory&) = delete;
  PresenceDirectory& operator=(const PresenceDirectory&) = delete;

  // A login: the row becomes ours whoever held it. The handler gets the node
  // that held it before (to tell it its link is displaced), if another.
  using ClaimHandler = std::function<void(PresenceOutcome, std::optional<std::string> previous_node)>;
  void claim(HolderKind kind, const std::string& holder, ClaimHandler handler);

  // A keepalive: renews the row's TTL, or writes it again if it is gone (Redis
  // restarted, or it expired), but never takes a row another node holds: the
  // handler then gets held_elsewhere (this node's link was displaced). Every
  // refresh asked for in one loop turn leaves in one pipeline at the turn's end.
  // Within min_refresh_interval_ms of the last write the handler gets done at
  // once, unless a connection to Redis was made since (a server may have
  // restarted empty): then every row is written again at its next keepalive.
  using RefreshHandler = std::function<void(PresenceOutcome)>;
  void refresh(HolderKind kind, const std::string& holder, RefreshHandler handler = {});

  // A logout: deletes the row only if this node still holds it (not_ours otherwise).
  // Every handler here may be empty (nobody waits for the outcome).
  void release(HolderKind kind, const std::string& holder, std::function<void(PresenceOutcome)> handler);

  // Which node holds the link; nullopt when nobody does.
  using LookupHandler = std::function<void(PresenceOutcome, std::optional<std::string> node)>;
  void lookup(HolderKind kind, const std::string& holder, LookupHandler handler);

  const std::string& node_id() const { return node_id_; }
  uint64_t ttl_ms() const { return ttl_ms_; }
  uint64_t pipelines_sent() const { return pipelines_sent_; }
  uint64_t refreshes_skipped() const { return refreshes_skipped_; }

 private:
  void flush_refreshes();
  void remember_written(const std::string& key);
  void forget_written_if_reconnected();

  uv_loop_t* loop_;
  RedisClient& redis_;
  std::string node_id_;
  uint64_t ttl_ms_;
  uv_check_t* flush_check_;  // freed in its close callback
  std::unordered_map<std::string, std::vector<RefreshHandler>> pending_refreshes_;  // by key
  uint64_t min_refresh_interval_ms_;
  // Rows written by this node and when (loop time), for min_refresh_interval_ms.
  std::unordered_map<std::string, uint64_t> written_ms_;
  uint64_t connections_seen_ = 0;
  uint64_t last_prune_ms_ = 0;
  uint64_t pipelines_sent_ = 0;
  uint64_t refreshes_skipped_ = 0;
  // Reply handlers check it: the directory may be gone when a reply comes.
  std::shared_ptr<PresenceDirectory*> self_;
};

}  // namespace tsunagu::cluster
