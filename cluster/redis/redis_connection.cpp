#include "cluster/redis/redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "base/log.hpp"

namespace tsunagu::cluster {

namespace {

RedisValue copy_reply(const redisReply* reply) {
  RedisValue value;
  switch (reply->type) {
    case REDIS_REPLY_STRING: value.type = RedisValue::Type::string; break;
    case REDIS_REPLY_STATUS: value.type = RedisValue::Type::status; break;
    case REDIS_REPLY_ERROR: value.type = RedisValue::Type::error; break;
    case REDIS_REPLY_INTEGER: value.type = RedisValue::Type::integer; break;
    case REDIS_REPLY_ARRAY: value.type = RedisValue::Type::array; break;
    default: value.type = RedisValue::Type::nil; break;
  }
  if (reply->str != nullptr) value.text.assign(reply->str, reply->len);
  value.integer = reply->integer;
  for (size_t i = 0; i < reply->elements; ++i) value.elements.push_back(copy_reply(reply->element[i]));
  return value;
}

// hiredis on the libuv loop. Our own adapter rather than hiredis 0.14's
// <hiredis/adapters/libuv.h>: that one returns at once when libuv reports a
// poll error (`if (status != 0) return;`), and libuv stops polling a socket
// that gets EPOLLERR. A Redis killed with our command unread in its socket
// answers with a reset, which is such an error: the context then never read
// again, never learnt the connection was gone, and kept every later command
// (the presence refreshes among them) unanswered for ever. A refused connect
// was lost the same way. Here an error hands the socket to hiredis, whose
// read or write meets the error and disconnects, as hiredis 1.x's adapter does.
struct UvRedisEvents {
  uv_poll_t poll;
  redisAsyncContext* context;
  int events = 0;
};

void uv_redis_poll(uv_poll_t* handle, int status, int ready);

void uv_redis_update(UvRedisEvents* events) {
  if (events->events != 0) {
    uv_poll_start(&events->poll, events->events, uv_redis_poll);
  } else {
    uv_poll_stop(&events->poll);
  }
}

void uv_redis_poll(uv_poll_t* handle, int status, int ready) {
  auto* events = static_cast<UvRedisEvents*>(handle->data);
  if (status < 0) ready = events->events | UV_READABLE;  // libuv has stopped the poll: let hiredis find out why
  // Each call may free the context, which clears events->context (the struct
  // itself lives until the poll handle's close callback).
  if (events->context != nullptr && (ready & UV_READABLE) != 0) redisAsyncHandleRead(events->context);
  if (events->context != nullptr && (ready & UV_WRITABLE) != 0) redisAsyncHandleWrite(events->context);
  if (status < 0 && events->context != nullptr) uv_redis_update(events);  // still open: poll it again
}

// hiredis asks for read interest after every reply and write interest with
// every command; libuv turns each uv_poll_start into epoll_ctl calls, so the
// poll is re-armed only when the interest really changes.
void uv_redis_add(void* data, int flag) {
  auto* events = static_cast<UvRedisEvents*>(data);
  if ((events->events & flag) == flag) return;
  events->events |= flag;
  uv_redis_update(events);
}

void uv_redis_delete(void* data, int flag) {
  auto* events = static_cast<UvRedisEvents*>(data);
  if ((events->events & flag) == 0) return;
  events->events &= ~flag;
  uv_redis_update(events);
}

void uv_redis_cleanup(void* data) {
  auto* events = static_cast<UvRedisEvents*>(data);
  events->context = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&events->poll),
           [](uv_handle_t* handle) { delete static_cast<UvRedisEvents*>(handle->data); });
}

bool attach_to_loop(redisAsyncContext* context, uv_loop_t* loop) {
  if (context->ev.data != nullptr) return false;
  auto* events = new UvRedisEvents{};
  if (uv_poll_init(loop, &events->poll, context->c.fd) != 0) {
    delete events;
    return false;
  }
  events->poll.data = events;
  events->context = context;
  context->ev.data = events;
  context->ev.addRead = [](void* data) { uv_redis_add(data, UV_READABLE); };
  context->ev.delRead = [](void* data) { uv_redis_delete(data, UV_READABLE); };
  context->ev.addWrite = [](void* data) { uv_redis_add(data, UV_WRITABLE); };
  context->ev.delWrite = [](void* data) { uv_redis_delete(data, UV_WRITABLE); };
  context->ev.cleanup = uv_redis_cleanup;
  return true;
}

struct PendingCommand {
  RedisReplyHandler handler;
};

// Lives as long as hiredis holds the subscription: hiredis calls it a last time
// with no reply when it frees the context.
struct SubscriptionCallback {
  std::function<void(const std::string&, const std::string&)> on_message;
};

std::vector<const char*> argv_pointers(const std::vector<std::string>& argv, std::vector<size_t>& lengths) {
  std::vector<const char*> pointers;
  for (const std::string& arg : argv) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return pointers;
}

}  // namespace

RedisConnection::RedisConnection(uv_loop_t* loop, RedisEndpoint endpoint, RedisBackoff backoff, RedisAuth auth)
    : loop_(loop), endpoint_(std::move(endpoint)), backoff_(backoff), auth_(std::move(auth)),
      next_backoff_ms_(backoff.first_ms),
      reconnect_timer_(new uv_timer_t) {
  uv_timer_init(loop_, reconnect_timer_);
  reconnect_timer_->data = this;
}

RedisConnection::~RedisConnection() {
  uv_timer_stop(reconnect_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(reconnect_timer_),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
  if (context_ != nullptr) {
    context_->data = nullptr;  // the callbacks hiredis runs while freeing must not come back here
    redisAsyncFree(context_);
  }
}

void RedisConnection::start() {
  if (state_ == State::idle) connect();
}

void RedisConnection::connect() {
  state_ = State::connecting;
  context_ = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (context_ == nullptr || context_->err != 0 || !attach_to_loop(context_, loop_)) {
    if (context_ != nullptr) redisAsyncFree(context_);
    context_ = nullptr;
    schedule_reconnect();
    return;
  }
  context_->data = this;
  // While connecting, the reconnect timer is the attempt's deadline.
  uv_timer_start(reconnect_timer_, [](uv_timer_t* timer) { static_cast<RedisConnection*>(timer->data)->give_up_connecting(); },
                 backoff_.connect_timeout_ms, 0);
  redisAsyncSetConnectCallback(context_, &RedisConnection::handle_connect);
  redisAsyncSetDisconnectCallback(context_, &RedisConnection::handle_disconnect);
  if (auth_.enabled()) {
    // Queued before anything else, so it is the first command the server reads
    // on this connection (hiredis sends its buffer in order once connected).
    std::vector<std::string> argv{"AUTH"};
    if (!auth_.user.empty()) argv.push_back(auth_.user);
    argv.push_back(auth_.password);
    std::vector<size_t> lengths;
    std::vector<const char*> pointers = argv_pointers(argv, lengths);
    redisAsyncCommandArgv(context_, &RedisConnection::handle_auth, nullptr, static_cast<int>(argv.size()),
                          pointers.data(), lengths.data());
  }
}

void RedisConnection::handle_auth(redisAsyncContext* context, void* reply, void* /*privdata*/) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr || reply == nullptr) return;
  const auto* answer = static_cast<const redisReply*>(reply);
  if (answer->type == REDIS_REPLY_ERROR) {
    // Commands queued behind it get Redis' NOAUTH errors; then the connection
    // closes and reconnects with backoff, and meanwhile callers are told why.
    std::string error = "AUTH refused: " + std::string(answer->str != nullptr ? answer->str : "", answer->len);
    if (error != self->auth_error_)  // once per change, not once per reconnection
      log::warn() << "cluster: Redis " << self->endpoint_.to_string() << " " << error
                  << " (check [cluster] redis_user and redis_password_file)";
    self->auth_error_ = std::move(error);
    redisAsyncDisconnect(context);
  } else {
    if (!self->auth_error_.empty()) log::info() << "cluster: Redis " << self->endpoint_.to_string() << " accepted AUTH";
    self->auth_error_.clear();
  }
}

std::string RedisConnection::down_reason(const char* what) const {
  std::string reason = "Redis " + endpoint_.to_string() + " " + what;
  if (!auth_error_.empty()) reason += " (" + auth_error_ + ")";
  return reason;
}

void RedisConnection::schedule_reconnect() {
  state_ = State::waiting;
  first_attempt_ = false;
  uint64_t delay = next_backoff_ms_;
  next_backoff_ms_ = std::min(next_backoff_ms_ * 2, backoff_.max_ms);
  uv_timer_start(reconnect_timer_, [](uv_timer_t* timer) { static_cast<RedisConnection*>(timer->data)->connect(); },
                 delay, 0);
}

void RedisConnection::give_up_connecting() {
  if (state_ != State::connecting || context_ == nullptr) return;
  log::debug() << "cluster: Redis " << endpoint_.to_string() << " connection attempt not through after "
               << backoff_.connect_timeout_ms << " ms; trying again";
  redisAsyncContext* stuck = context_;
  context_ = nullptr;
  stuck->data = nullptr;  // what hiredis calls back while freeing it must not come here
  redisAsyncFree(stuck);  // commands queued on it get no reply: their handlers hear "connection lost"
  schedule_reconnect();
}

void RedisConnection::handle_connect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  uv_timer_stop(self->reconnect_timer_);  // the attempt's deadline
  if (status != REDIS_OK) {
    log::debug() << "cluster: Redis " << self->endpoint_.to_string() << " connect failed: " << context->errstr;
    self->context_ = nullptr;  // hiredis frees a context whose connect failed
    self->schedule_reconnect();
    return;
  }
  self->state_ = State::connected;
  self->next_backoff_ms_ = self->backoff_.first_ms;
  if (self->connections_made_ > 0) log::info() << "cluster: Redis " << self->endpoint_.to_string() << " connected again";
  ++self->connections_made_;
  if (self->on_connected_) self->on_connected_();
}

void RedisConnection::handle_disconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  if (self->state_ == State::connected)
    log::warn() << "cluster: Redis " << self->endpoint_.to_string() << " connection lost"
                << (status != REDIS_OK && context->errstr[0] != '\0' ? std::string(": ") + context->errstr : std::string())
                << "; reconnecting";
  self->context_ = nullptr;  // freed by hiredis after this callback
  self->schedule_reconnect();
}

bool RedisConnection::accepts_commands() const {
  // The first connection attempt queues commands (hiredis sends them once
  // connected); after a failure, callers are told at once instead.
  return state_ == State::connected || (state_ == State::connecting && first_attempt_ && context_ != nullptr);
}

void RedisConnection::handle_reply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<PendingCommand> pending(static_cast<PendingCommand*>(privdata));
  if (reply == nullptr) {
    pending->handler(RedisValue::make_unavailable("connection to Redis lost"));
  } else {
    pending->handler(copy_reply(static_cast<redisReply*>(reply)));
  }
}

void RedisConnection::send(const std::vector<std::string>& argv, RedisReplyHandler handler) {
  if (!accepts_commands()) {
    handler(RedisValue::make_unavailable(down_reason("is down")));
    return;
  }
  std::vector<size_t> lengths;
  std::vector<const char*> pointers = argv_pointers(argv, lengths);
  auto* pending = new PendingCommand{std::move(handler)};
  if (redisAsyncCommandArgv(context_, &RedisConnection::handle_reply, pending, static_cast<int>(argv.size()),
                            pointers.data(), lengths.data()) != REDIS_OK) {
    std::unique_ptr<PendingCommand> failed(pending);
    failed->handler(RedisValue::make_unavailable(down_reason("is closing")));
  }
}

void RedisConnection::handle_message(redisAsyncContext* context, void* reply, void* privdata) {
  auto* callback = static_cast<SubscriptionCallback*>(privdata);
  if (reply == nullptr) {  // the context is being freed: hiredis' last call for this subscription
    delete callback;
    return;
  }
  auto* message = static_cast<redisReply*>(reply);
  if (message->type != REDIS_REPLY_ARRAY || message->elements < 3) return;
  std::string_view kind(message->element[0]->str, message->element[0]->len);
  if (kind == "smessage" || kind == "message") {
    callback->on_message(std::string(message->element[1]->str, message->element[1]->len),
                         std::string(message->element[2]->str, message->element[2]->len));
  } else if (kind == "sunsubscribe" && context->data != nullptr) {
    // The channel's slot moved to another server: reconnect, and the owner subscribes again there.
    redisAsyncDisconnect(context);
  }
}

void RedisConnection::subscribe_sharded(const std::string& channel, RedisReplyHandler on_reply,
                                        std::function<void(const std::string&, const std::string&)> on_message) {
  if (!accepts_commands()) {
    on_reply(RedisValue::make_unavailable(down_reason("is down")));
    return;
  }
  // hiredis 0.14 (Debian 12) knows SUBSCRIBE but not SSUBSCRIBE: it hands a
  // push to a callback only when the context is in SUBSCRIBE mode, finding it
  // by channel name (an "smessage" push is found the same way), and asserts
  // otherwise. So SSUBSCRIBE goes first as an ordinary command (its reply
  // reaches on_reply), then a plain SUBSCRIBE of the same name puts the
  // context in subscriber mode and registers the callback for the pushes.
  // Nothing PUBLISHes to node channels, so the plain subscription stays silent.
  send({"SSUBSCRIBE", channel}, std::move(on_reply));
  auto* callback = new SubscriptionCallback{std::move(on_message)};
  const char* argv[] = {"SUBSCRIBE", channel.c_str()};
  size_t lengths[] = {9, channel.size()};
  if (redisAsyncCommandArgv(context_, &RedisConnection::handle_message, callback, 2, argv, lengths) != REDIS_OK) {
    delete callback;
  }
}

}  // namespace tsunagu::cluster
