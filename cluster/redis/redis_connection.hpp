// One connection to one Redis server on a libuv loop, through hiredis' async
// API and an event adapter of our own (the only file that includes hiredis). It
// reconnects with exponential backoff when the server goes away; while it is
// down, a command fails at once with RedisValue::Type::unavailable, which the
// caller turns into 503 instead of waiting.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <uv.h>

struct redisAsyncContext;

namespace tsunagu::cluster {

struct RedisEndpoint {
  std::string host;  // an IP literal: hiredis resolves names with a blocking call
  int port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
  friend bool operator==(const RedisEndpoint&, const RedisEndpoint&) = default;
};

// A reply copied out of hiredis' memory.
struct RedisValue {
  enum class Type { nil, string, integer, status, array, error, unavailable };
  Type type = Type::nil;
  std::string text;  // string, status, error, and unavailable's reason
  long long integer = 0;
  std::vector<RedisValue> elements;

  bool ok() const { return type != Type::error && type != Type::unavailable; }
  static RedisValue make_unavailable(std::string reason) { return {Type::unavailable, std::move(reason), 0, {}}; }
};

using RedisReplyHandler = std::function<void(const RedisValue&)>;

struct RedisBackoff {
  uint64_t first_ms = 100;
  uint64_t max_ms = 2000;
  // A connection attempt not through by then is given up and retried: a
  // server whose host is gone may never answer the connect at all.
  uint64_t connect_timeout_ms = 1000;
};

// What a connection sends as its first command, AUTH (Redis' requirepass or an
// ACL user): without it, anyone who reaches Redis could publish on the bus
// between nodes, which the nodes trust. Empty password: no AUTH.
struct RedisAuth {
  std::string user;  // empty: AUTH with the password alone ("default" user / requirepass)
  std::string password;
  bool enabled() const { return !password.empty(); }
};

class RedisConnection {
 public:
  RedisConnection(uv_loop_t* loop, RedisEndpoint endpoint, RedisBackoff backoff = {}, RedisAuth auth = {});
  ~RedisConnection();  // closes; pending handlers get `unavailable`
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Called after every (re)connection; a subscriber subscribes again there.
  void on_connected(std::function<void()> handler) { on_connected_ = std::move(handler); }
  void start();

  // Sends one command. Commands issued in one loop turn leave in one write
  // (hiredis writes its buffer when the socket is next writable): a pipeline.
  // While down the handler runs before send returns, with `unavailable`.
  void send(const std::vector<std::string>& argv, RedisReplyHandler handler);

  // Subscribes to a sharded channel (SSUBSCRIBE). Every message published to it
  // with SPUBLISH reaches on_message; `on_reply` gets SSUBSCRIBE's own reply
  // (an error such as MOVED when the channel's slot lives elsewhere). After this,
  // the connection is in subscriber mode and takes no other command.
  void subscribe_sharded(const std::string& channel, RedisReplyHandler on_reply,
                         std::function<void(const std::string& channel, const std::string& message)> on_message);

  bool connected() const { return state_ == State::connected; }
  const RedisEndpoint& endpoint() const { return endpoint_; }
  uint64_t connections_made() const { return connections_made_; }
  // Redis' answer when it refused the last AUTH (cleared by the next accepted one).
  const std::string& auth_error() const { return auth_error_; }

 private:
  enum class State { idle, connecting, connected, waiting };
  void connect();
  void schedule_reconnect();
  void give_up_connecting();
  bool accepts_commands() const;
  static void handle_connect(const redisAsyncContext* context, int status);
  static void handle_disconnect(const redisAsyncContext* context, int status);
  static void handle_reply(redisAsyncContext* context, void* reply, void* privdata);
  static void handle_message(redisAsyncContext* context, void* reply, void* privdata);
  static void handle_auth(redisAsyncContext* context, void* reply, void* privdata);
  std::string down_reason(const char* what) const;

  uv_loop_t* loop_;
  RedisEndpoint endpoint_;
  RedisBackoff backoff_;
  RedisAuth auth_;
  std::string auth_error_;
  uint64_t next_backoff_ms_;
  State state_ = State::idle;
  bool first_attempt_ = true;
  uint64_t connections_made_ = 0;
  redisAsyncContext* context_ = nullptr;
  uv_timer_t* reconnect_timer_;  // freed in its close callback: it may outlive this object by a loop turn
  std::function<void()> on_connected_;
};

}  // namespace tsunagu::cluster
