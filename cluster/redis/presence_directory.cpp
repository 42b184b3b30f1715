#include "cluster/redis/presence_directory.hpp"

namespace tsunagu::cluster {

namespace {

// Renew or recreate, unless another node holds the row. 1: ours now; 0: someone else's.
constexpr const char* refresh_script =
    "local holder = redis.call('GET', KEYS[1]) "
    "if holder == false or holder == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0";

// Delete only our own row: a logout racing a login on another node must not
// remove the newer row. 1: deleted; 0: not ours (or gone).
constexpr const char* release_script =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

PresenceOutcome outcome_of(const RedisValue& reply) {
  if (reply.type == RedisValue::Type::unavailable) return PresenceOutcome::unavailable;
  if (reply.type == RedisValue::Type::error) return PresenceOutcome::failed;
  return PresenceOutcome::done;
}

}  // namespace

std::string presence_key(HolderKind kind, std::string_view holder) {
  std::string key = kind == HolderKind::user ? "presence:{" : kind == HolderKind::agent ? "agent:{" : "prefix:{";
  key.append(holder);
  key.push_back('}');
  return key;
}

PresenceDirectory::PresenceDirectory(uv_loop_t* loop, RedisClient& redis, std::string node_id, uint64_t ttl_ms,
                                     uint64_t min_refresh_interval_ms)
    : loop_(loop), redis_(redis), node_id_(std::move(node_id)), ttl_ms_(ttl_ms), flush_check_(new uv_check_t),
      min_refresh_interval_ms_(min_refresh_interval_ms), connections_seen_(redis.connections_made()),
      self_(std::make_shared<PresenceDirectory*>(this)) {
  uv_check_init(loop_, flush_check_);
  flush_check_->data = this;
}

PresenceDirectory::~PresenceDirectory() {
  uv_check_stop(flush_check_);
  uv_close(reinterpret_cast<uv_handle_t*>(flush_check_),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_check_t*>(handle); });
}

void PresenceDirectory::claim(HolderKind kind, const std::string& holder, ClaimHandler handler) {
  std::string key = presence_key(kind, holder);
  // SET ... GET (Redis >= 6.2) returns the node that held the row, in the same step.
  std::weak_ptr<PresenceDirectory*> alive = self_;
  redis_.command(key, {"SET", key, node_id_, "PX", std::to_string(ttl_ms_), "GET"},
                 [handler = std::move(handler), node = node_id_, alive, key](const RedisValue& reply) {
                   if (auto self = alive.lock(); self && outcome_of(reply) == PresenceOutcome::done) {
                     (*self)->remember_written(key);
                   }
                   std::optional<std::string> previous;
                   if (reply.type == RedisValue::Type::string && reply.text != node) previous = reply.text;
                   if (handler) handler(outcome_of(reply), previous);
                 });
}

void PresenceDirectory::remember_written(const std::string& key) {
  if (min_refresh_interval_ms_ > 0) written_ms_[key] = uv_now(loop_);
}

void PresenceDirectory::forget_written_if_reconnected() {
  uint64_t made = redis_.connections_made();
  if (made != connections_seen_) {
    written_ms_.clear();
    connections_seen_ = made;
  }
  // Rows whose links went without a release would otherwise stay here.
  uint64_t now = uv_now(loop_);
  if (now - last_prune_ms_ >= ttl_ms_) {
    std::erase_if(written_ms_, [&](const auto& entry) { return now - entry.second >= ttl_ms_; });
    last_prune_ms_ = now;
  }
}

void PresenceDirectory::refresh(HolderKind kind, const std::string& holder, RefreshHandler handler) {
  std::string key = presence_key(kind, holder);
  if (min_refresh_interval_ms_ > 0) {
    forget_written_if_reconnected();
    auto written = written_ms_.find(key);
    if (written != written_ms_.end() && uv_now(loop_) - written->second < min_refresh_interval_ms_) {
      ++refreshes_skipped_;
      if (handler) handler(PresenceOutcome::done);
      return;
    }
  }
  if (pending_refreshes_.empty()) {
    uv_check_start(flush_check_, [](uv_check_t* check) { static_cast<PresenceDirectory*>(check->data)->flush_refreshes(); });
  }
  pending_refreshes_[key].push_back(std::move(handler));
}

void PresenceDirectory::flush_refreshes() {
  uv_check_stop(flush_check_);
  auto batch = std::move(pending_refreshes_);
  pending_refreshes_.clear();
  if (batch.empty()) return;
  ++pipelines_sent_;
  std::string ttl = std::to_string(ttl_ms_);
  std::weak_ptr<PresenceDirectory*> alive = self_;
  for (auto& [key, handlers] : batch) {
    redis_.command(key, {"EVAL", refresh_script, "1", key, node_id_, ttl},
                   [handlers = std::move(handlers), alive, written_key = key](const RedisValue& reply) {
                     PresenceOutcome outcome = outcome_of(reply);
                     if (outcome == PresenceOutcome::done && reply.integer == 0) outcome = PresenceOutcome::held_elsewhere;
                     if (auto self = alive.lock(); self && outcome == PresenceOutcome::done) {
                       (*self)->remember_written(written_key);
                     } else if (self && outcome == PresenceOutcome::held_elsewhere) {
                       (*self)->written_ms_.erase(written_key);
                     }
                     for (const RefreshHandler& handler : handlers) {
                       if (handler) handler(outcome);
                     }
                   });
  }
}

void PresenceDirectory::release(HolderKind kind, const std::string& holder,
                                std::function<void(PresenceOutcome)> handler) {
  std::string key = presence_key(kind, holder);
  written_ms_.erase(key);
  redis_.command(key, {"EVAL", release_script, "1", key, node_id_},
                 [handler = std::move(handler)](const RedisValue& reply) {
                   PresenceOutcome outcome = outcome_of(reply);
                   if (outcome == PresenceOutcome::done && reply.integer == 0) outcome = PresenceOutcome::not_ours;
                   if (handler) handler(outcome);
                 });
}

void PresenceDirectory::lookup(HolderKind kind, const std::string& holder, LookupHandler handler) {
  std::string key = presence_key(kind, holder);
  redis_.command(key, {"GET", key}, [handler = std::move(handler)](const RedisValue& reply) {
    std::optional<std::string> node;
    if (reply.type == RedisValue::Type::string) node = reply.text;
    handler(outcome_of(reply), node);
  });
}

}  // namespace tsunagu::cluster
