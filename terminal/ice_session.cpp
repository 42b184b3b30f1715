#include "terminal/ice_session.hpp"

#include <nice/agent.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <deque>
#include <utility>
#include <variant>

#include "base/log.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::terminal {
namespace {

// GLib's G_CALLBACK and friends are old-style casts; these are the checked
// spellings used below.
template <class F>
GCallback as_gcallback(F* function) {
  return reinterpret_cast<GCallback>(function);
}

constexpr guint component_id = 1;
constexpr guint ready_idle_timeout_ms = 500;  // libnice's default is 5000
// Datagram mode reads with nice_agent_recv_messages_nonblocking: this many
// messages per call, each as large as a UDP datagram can be (the native
// profile's sealed packets reach 64 KiB; libnice's own buffer is as large),
// and at most this many calls per readiness before the loop runs again.
constexpr size_t receive_batch = 4;
constexpr size_t receive_buffer_size = 65536;
constexpr int receive_rounds = 16;

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// ------------------------------------------------------------------- addresses

proto::SocketAddress to_socket_address(const NiceAddress& address) {
  sockaddr_storage storage{};
  nice_address_copy_to_sockaddr(&address, reinterpret_cast<sockaddr*>(&storage));
  return transport::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage));
}

NiceAddress to_nice_address(const proto::SocketAddress& address) {
  sockaddr_storage storage{};
  transport::to_sockaddr(address, &storage);
  NiceAddress out;
  nice_address_init(&out);
  nice_address_set_from_sockaddr(&out, reinterpret_cast<const sockaddr*>(&storage));
  return out;
}

const char* type_name(NiceCandidateType type) {
  switch (type) {
    case NICE_CANDIDATE_TYPE_HOST: return "host";
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return "srflx";
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: return "prflx";
    case NICE_CANDIDATE_TYPE_RELAYED: return "relay";
  }
  return "unknown";
}

SelectedPair to_pair(const NiceCandidate* local, const NiceCandidate* remote) {
  return SelectedPair{type_name(local->type), type_name(remote->type), to_socket_address(local->addr),
                      to_socket_address(remote->addr)};
}

}  // namespace

std::string candidate_type_of(std::string_view line) {
  // a=candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE ...
  size_t at = line.find(" typ ");
  if (at == std::string_view::npos) return {};
  std::string_view rest = line.substr(at + 5);
  return std::string(rest.substr(0, rest.find(' ')));
}

std::string explain_ice_failure(const IceFailureContext& context) {
  auto has = [](const std::vector<std::string>& types, std::string_view type) {
    return std::find(types.begin(), types.end(), type) != types.end();
  };
  auto list = [](const std::vector<std::string>& types) {
    std::string out;
    for (const auto& type : types) {
      if (out.find(type) != std::string::npos) continue;
      out += (out.empty() ? "" : ", ") + type;
    }
    return out.empty() ? std::string("none") : out;
  };
  std::string reason = "ICE connectivity checks failed (local candidates: " + list(context.local_types) +
                       "; remote: " + list(context.remote_types) + ")";
  if (!context.turn_server) {
    reason += "; no TURN server was configured, so there was no relay to fall back on (node.toml [turn])";
  } else if (!has(context.local_types, "relay")) {
    reason += "; no relay candidate was gathered from TURN server " + *context.turn_server +
              " (coturn unreachable, no realm= set, or its static-auth-secret is not the node's turn.secret: "
              "see docs/operator.md, Calls and TURN)";
  } else {
    reason += "; a relay candidate from " + *context.turn_server +
              " was gathered but no relayed path worked: coturn refused to relay to the peer (denied-peer-ip) or "
              "lost the allocation (it closes one when it cannot send to a peer address: deny private ranges "
              "with denied-peer-ip, docs/operator.md)";
  }
  return reason;
}

namespace {

// ---------------------------------------------------------------------- events

struct Gathered { IceDescription description; };
struct Connected { SelectedPair pair; };
struct PairChanged { SelectedPair pair; };
struct Data { Bytes bytes; uint64_t arrival_ns; std::optional<proto::SocketAddress> source; };
struct Writable {};
struct Failed { std::string reason; };
using Event = std::variant<Gathered, Connected, PairChanged, Data, Writable, Failed>;

}  // namespace

// GLib's main-context protocol (prepare, query, poll, check, dispatch) run
// by the libuv loop instead of a GLib thread: uv_poll handles for the fds the
// context asks for, a uv_timer for its timeout and a uv_idle while a source is
// ready at once (so the loop does not block). The prepare handle prepares and
// queries the context before the loop blocks; the check handle, after the
// poll, hands over what the fds reported and dispatches. One thread, so a
// received datagram wakes one loop once, not a GLib thread and then the loop.
class ContextDriver {
 public:
  // `deliver` hands the owner's queued events over: before each prepare
  // (events posted outside a dispatch, e.g. by nice_agent_send) and after
  // each dispatch. It may close or destroy the owner, and with it this
  // driver: it returns false then, and nothing of the driver is touched.
  using Deliver = bool (*)(void* owner);
  ContextDriver(uv_loop_t* loop, GMainContext* context, Deliver deliver, void* owner)
      : loop_(loop), context_(context), deliver_(deliver), owner_(owner) {}
  ContextDriver(const ContextDriver&) = delete;
  ContextDriver& operator=(const ContextDriver&) = delete;
  ~ContextDriver() { stop(); }

  int start() {
    prepare_ = new uv_prepare_t;
    check_ = new uv_check_t;
    timer_ = new uv_timer_t;
    idle_ = new uv_idle_t;
    uv_prepare_init(loop_, prepare_);
    uv_check_init(loop_, check_);
    uv_timer_init(loop_, timer_);
    uv_idle_init(loop_, idle_);
    prepare_->data = check_->data = timer_->data = idle_->data = this;
    if (int rc = uv_prepare_start(prepare_, &ContextDriver::on_prepare); rc != 0) return rc;
    return uv_check_start(check_, &ContextDriver::on_check);
  }

  // Closes every handle; the context is left as it is (close() runs it
  // alone afterwards). A prepared, unchecked round is checked without
  // dispatching, so the context can be iterated again.
  void stop() {
    finish_round_without_dispatch();
    for (auto& watch : watches_) close_handle(watch.handle);
    watches_.clear();
    close_handle(prepare_);
    close_handle(check_);
    close_handle(timer_);
    close_handle(idle_);
  }

  void finish_round_without_dispatch() {
    if (!prepared_) return;
    prepared_ = false;
    for (auto& fd : fds_) fd.revents = 0;
    g_main_context_check(context_, max_priority_, fds_.data(), static_cast<gint>(fds_.size()));
  }

 private:
  struct Watch {
    int fd;
    int events;  // UV_* asked for
    uv_poll_t* handle;
    gushort revents = 0;  // G_IO_* seen since the last check
  };

  template <class Handle>
  static void close_handle(Handle*& handle) {
    if (handle == nullptr) return;
    handle->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
    handle = nullptr;
  }

  static int uv_events_of(gushort events) {
    int out = UV_DISCONNECT;
    if ((events & G_IO_IN) != 0) out |= UV_READABLE;
    if ((events & G_IO_OUT) != 0) out |= UV_WRITABLE;
    if ((events & G_IO_PRI) != 0) out |= UV_PRIORITIZED;
    return out;
  }

  static void on_prepare(uv_prepare_t* handle) {
    auto* self = static_cast<ContextDriver*>(handle->data);
    if (self == nullptr) return;
    if (!self->deliver_(self->owner_)) return;
    self->prepare_round();
  }

  static void on_check(uv_check_t* handle) {
    auto* self = static_cast<ContextDriver*>(handle->data);
    if (self == nullptr || !self->prepared_) return;  // started after this iteration's prepare
    self->prepared_ = false;
    for (auto& fd : self->fds_) {
      fd.revents = 0;
      for (auto& watch : self->watches_) {
        if (watch.fd == fd.fd) fd.revents = watch.revents & (fd.events | G_IO_ERR | G_IO_HUP | G_IO_NVAL);
      }
    }
    for (auto& watch : self->watches_) watch.revents = 0;
    if (g_main_context_check(self->context_, self->max_priority_, self->fds_.data(),
                             static_cast<gint>(self->fds_.size()))) {
      g_main_context_push_thread_default(self->context_);
      g_main_context_dispatch(self->context_);
      g_main_context_pop_thread_default(self->context_);
    }
    Deliver deliver = self->deliver_;
    deliver(self->owner_);  // last: it may destroy this driver
  }

  static void on_poll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<ContextDriver*>(handle->data);
    if (self == nullptr) return;
    gushort seen = 0;
    if (status < 0) seen |= G_IO_ERR;
    if ((events & UV_READABLE) != 0) seen |= G_IO_IN;
    if ((events & UV_WRITABLE) != 0) seen |= G_IO_OUT;
    if ((events & UV_PRIORITIZED) != 0) seen |= G_IO_PRI;
    if ((events & UV_DISCONNECT) != 0) seen |= G_IO_HUP;
    for (auto& watch : self->watches_) {
      if (watch.handle == handle) watch.revents |= seen;
    }
  }

  void prepare_round() {
    g_main_context_prepare(context_, &max_priority_);
    gint timeout_ms = -1;
    fds_.resize(std::max<size_t>(fds_.size(), 4));
    gint count;
    while ((count = g_main_context_query(context_, max_priority_, &timeout_ms, fds_.data(),
                                         static_cast<gint>(fds_.size()))) > static_cast<gint>(fds_.size()))
      fds_.resize(static_cast<size_t>(count));
    fds_.resize(static_cast<size_t>(count));
    prepared_ = true;
    sync_watches();
    if (timeout_ms == 0) {
      uv_idle_start(idle_, [](uv_idle_t*) {});
      uv_timer_stop(timer_);
    } else {
      uv_idle_stop(idle_);
      if (timeout_ms > 0) {
        uv_update_time(loop_);
        uv_timer_start(timer_, [](uv_timer_t*) {}, static_cast<uint64_t>(timeout_ms), 0);
      } else {
        uv_timer_stop(timer_);
      }
    }
  }

  // One uv_poll per fd (libuv allows no more), asking for the union of what
  // the context's records for that fd ask for.
  void sync_watches() {
    for (size_t i = 0; i < watches_.size();) {
      bool wanted = std::any_of(fds_.begin(), fds_.end(), [&](const GPollFD& fd) { return fd.fd == watches_[i].fd; });
      if (wanted) {
        ++i;
        continue;
      }
      close_handle(watches_[i].handle);
      watches_.erase(watches_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (const auto& fd : fds_) {
      int events = 0;
      for (const auto& other : fds_) {
        if (other.fd == fd.fd) events |= uv_events_of(other.events);
      }
      auto found = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& w) { return w.fd == fd.fd; });
      if (found == watches_.end()) {
        auto* handle = new uv_poll_t;
        if (uv_poll_init(loop_, handle, fd.fd) != 0) {
          log::warn() << "ice: cannot watch fd " << fd.fd;
          delete handle;
          continue;
        }
        handle->data = this;
        watches_.push_back(Watch{fd.fd, 0, handle});
        found = watches_.end() - 1;
      }
      if (found->events != events) {
        found->events = events;
        uv_poll_start(found->handle, events, &ContextDriver::on_poll);
      }
    }
  }

  uv_loop_t* loop_;
  GMainContext* context_;
  Deliver deliver_;
  void* owner_;
  uv_prepare_t* prepare_ = nullptr;
  uv_check_t* check_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  std::vector<Watch> watches_;
  std::vector<GPollFD> fds_;
  gint max_priority_ = 0;
  bool prepared_ = false;
};

// The agent's state. Everything runs on the loop thread: libnice's signals
// come from the context's dispatch (ContextDriver) or from a call into the
// agent (e.g. reliable-transport-writable from send()); they only queue
// events, which the session hands to IceEvents outside libnice's stack.
struct IceSession::Core {
  IceConfig config;
  GMainContext* context = nullptr;
  bool context_acquired = false;
  NiceAgent* agent = nullptr;
  guint stream_id = 0;
  std::unique_ptr<ContextDriver> driver;
  GSource* close_timer = nullptr;
  bool close_completed = false;
  bool close_timed_out = false;

  std::deque<Event> queue;
  bool accepting = true;  // false from close(): nothing more is queued
  bool wake_for_data = true;  // false: Data waits for deliver_pending() or another event
  bool delivery_due = false;  // the queue holds an event that wants delivering now
  bool connected_reported = false;
  IceFailureContext failure_context;  // candidate types, for a failure's reason
  // Datagram mode: a watch per socket of the component on `context`, and the
  // buffers nice_agent_recv_messages_nonblocking fills (see watch_sockets).
  std::vector<GSource*> socket_watches;
  Bytes receive_buffers;

  ~Core() {
    driver.reset();
    unwatch_sockets();
    if (agent != nullptr) g_object_unref(agent);
    if (context != nullptr) {
      if (context_acquired) g_main_context_release(context);
      g_main_context_unref(context);
    }
  }

  void post(Event event) {
    if (!accepting) return;
    if (wake_for_data || !std::holds_alternative<Data>(event)) delivery_due = true;
    queue.push_back(std::move(event));
  }

  // Runs `work` from the context's next dispatch, as the GLib thread used to:
  // never inside the caller's stack. If the context goes away first, the
  // closure is only freed.
  void invoke(std::function<void()> work) {
    auto* heap = new std::function<void()>(std::move(work));
    GSource* source = g_idle_source_new();
    g_source_set_priority(source, G_PRIORITY_DEFAULT);
    g_source_set_callback(
        source,
        [](gpointer data) -> gboolean {
          (*static_cast<std::function<void()>*>(data))();
          return G_SOURCE_REMOVE;
        },
        heap, [](gpointer data) { delete static_cast<std::function<void()>*>(data); });
    g_source_attach(source, context);
    g_source_unref(source);
  }

  // Reliable mode: the byte stream's pieces, which have no source of their own.
  static void on_recv(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer data) {
    auto* self = static_cast<Core*>(data);
    auto* begin = reinterpret_cast<const std::byte*>(buf);
    self->post(Data{Bytes(begin, begin + len), monotonic_ns(), std::nullopt});
  }

  // Datagram mode: attach_recv's callback carries no source address, and a
  // WebRTC call takes DTLS only from the selected pair's remote, so datagrams
  // are read with nice_agent_recv_messages_nonblocking, which fills
  // NiceInputMessage.from. Without attach_recv libnice keeps its sockets on a
  // context of its own that only that call iterates (it reads STUN there
  // too): a watch per socket on `context` says when to call it. The sockets
  // exist once gathering started (host candidates; srflx, relay and prflx
  // share them; ICE-TCP is off).
  void watch_sockets() {
    if (config.reliable || !socket_watches.empty()) return;
    receive_buffers.resize(receive_batch * receive_buffer_size);
    GPtrArray* sockets = nice_agent_get_sockets(agent, stream_id, component_id);
    for (guint i = 0; i < sockets->len; ++i) {
      auto* socket = static_cast<GSocket*>(g_ptr_array_index(sockets, i));
      GSource* watch = g_socket_create_source(socket, G_IO_IN, nullptr);
      g_source_set_callback(watch, reinterpret_cast<GSourceFunc>(as_gcallback(&on_readable)), this, nullptr);
      g_source_attach(watch, context);
      socket_watches.push_back(watch);
    }
    g_ptr_array_unref(sockets);
  }

  void unwatch_sockets() {
    for (GSource* watch : socket_watches) {
      g_source_destroy(watch);
      g_source_unref(watch);
    }
    socket_watches.clear();
  }

  static gboolean on_readable(GSocket* socket, GIOCondition, gpointer data) {
    // libnice closes a socket that failed; a watch on it would fire forever.
    if (g_socket_is_closed(socket)) return G_SOURCE_REMOVE;
    static_cast<Core*>(data)->receive_datagrams();
    return G_SOURCE_CONTINUE;
  }

  void receive_datagrams() {
    std::array<NiceAddress, receive_batch> sources{};
    std::array<GInputVector, receive_batch> buffers{};
    std::array<NiceInputMessage, receive_batch> messages{};
    for (int round = 0; round < receive_rounds; ++round) {
      for (size_t i = 0; i < receive_batch; ++i) {
        nice_address_init(&sources[i]);
        buffers[i] = GInputVector{receive_buffers.data() + i * receive_buffer_size, receive_buffer_size};
        messages[i] = NiceInputMessage{&buffers[i], 1, &sources[i], 0};
      }
      GError* error = nullptr;
      gint received = nice_agent_recv_messages_nonblocking(agent, stream_id, component_id, messages.data(),
                                                           guint(receive_batch), nullptr, &error);
      if (error != nullptr) {
        // WOULD_BLOCK: drained, or only STUN (answered inside libnice) was read.
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
          log::debug() << "ice: receive: " << error->message;
        g_error_free(error);
        return;
      }
      uint64_t arrival = monotonic_ns();
      for (gint i = 0; i < received; ++i) {
        const auto* begin = static_cast<const std::byte*>(buffers[size_t(i)].buffer);
        post(Data{Bytes(begin, begin + messages[size_t(i)].length), arrival,
                  to_socket_address(sources[size_t(i)])});
      }
      if (received < gint(receive_batch)) return;
    }
  }

  static void on_gathering_done(NiceAgent* agent, guint stream_id, gpointer data) {
    auto* self = static_cast<Core*>(data);
    IceDescription description;
    gchar* ufrag = nullptr;
    gchar* password = nullptr;
    if (nice_agent_get_local_credentials(agent, stream_id, &ufrag, &password)) {
      description.ufrag = ufrag;
      description.password = password;
    }
    g_free(ufrag);
    g_free(password);

    // Relays first (the one path that always works), then srflx, then host;
    // by priority inside a type. Capped so the description always encodes.
    std::vector<NiceCandidate*> chosen;
    GSList* candidates = nice_agent_get_local_candidates(agent, stream_id, component_id);
    for (GSList* i = candidates; i != nullptr; i = i->next) {
      auto* candidate = static_cast<NiceCandidate*>(i->data);
      if (self->config.relay_only && candidate->type != NICE_CANDIDATE_TYPE_RELAYED) continue;
      if (candidate->transport != NICE_CANDIDATE_TRANSPORT_UDP) continue;
      chosen.push_back(candidate);
    }
    auto rank = [](const NiceCandidate* c) {
      switch (c->type) {
        case NICE_CANDIDATE_TYPE_RELAYED: return 0;
        case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return 1;
        default: return 2;
      }
    };
    std::stable_sort(chosen.begin(), chosen.end(), [&](const NiceCandidate* a, const NiceCandidate* b) {
      if (rank(a) != rank(b)) return rank(a) < rank(b);
      return a->priority > b->priority;
    });
    for (NiceCandidate* candidate : chosen) {
      if (description.candidates.size() == max_ice_candidates) break;
      gchar* line = nice_agent_generate_local_candidate_sdp(agent, candidate);
      if (line != nullptr && check_ice_candidate_line(line).empty()) description.candidates.emplace_back(line);
      g_free(line);
    }
    g_slist_free_full(candidates, [](gpointer c) { nice_candidate_free(static_cast<NiceCandidate*>(c)); });

    if (description.candidates.empty()) {
      self->post(Failed{self->config.relay_only ? "no relay candidate gathered (relay_only)"
                                                : "no candidate gathered"});
      return;
    }
    if (auto error = check_ice_description(description); !error.empty()) {
      self->post(Failed{"local description: " + std::string(error)});
      return;
    }
    for (const auto& line : description.candidates)
      self->failure_context.local_types.push_back(candidate_type_of(line));
    self->post(Gathered{std::move(description)});
  }

  std::optional<SelectedPair> selected_pair() {
    NiceCandidate* local = nullptr;
    NiceCandidate* remote = nullptr;
    if (!nice_agent_get_selected_pair(agent, stream_id, component_id, &local, &remote)) return std::nullopt;
    return to_pair(local, remote);
  }

  static void on_state_changed(NiceAgent* agent, guint, guint component, guint state, gpointer data) {
    auto* self = static_cast<Core*>(data);
    if (component != component_id) return;
    if (state == NICE_COMPONENT_STATE_READY) shorten_idle_ticking(agent);
    if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) {
      if (self->connected_reported) return;
      auto pair = self->selected_pair();
      if (!pair) return;  // libnice selects a pair before it reports CONNECTED
      self->connected_reported = true;
      self->post(Connected{std::move(*pair)});
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
      self->post(Failed{explain_ice_failure(self->failure_context)});
    }
  }

  // libnice keeps its 20 ms connectivity-check timer ticking for its
  // idle-timeout (5 s) after the last check, waking the loop 50 times a
  // second for nothing: most of a short call (seen with NICE_DEBUG: "timer
  // tick #251 ... stopping conncheck timer"). Once the pair is nominated
  // (READY) nothing is pending that the idle wait could still rescue: a late
  // check from the peer re-arms the timer itself. The property exists since
  // libnice 0.1.19; older ones keep their behaviour.
  static void shorten_idle_ticking(NiceAgent* agent) {
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "idle-timeout") == nullptr) return;
    g_object_set(agent, "idle-timeout", guint(ready_idle_timeout_ms), nullptr);
  }

  static void on_new_selected_pair(NiceAgent*, guint, guint component, NiceCandidate* local, NiceCandidate* remote,
                                   gpointer data) {
    auto* self = static_cast<Core*>(data);
    if (component != component_id) return;
    if (!self->connected_reported) return;  // on_connected carries the first one
    self->post(PairChanged{to_pair(local, remote)});
  }

  static void on_writable(NiceAgent*, guint, guint component, gpointer data) {
    if (component == component_id) static_cast<Core*>(data)->post(Writable{});
  }

  void connect_signals() {
    auto connect = [this](const char* name, GCallback callback) {
      g_signal_connect_data(agent, name, callback, this, nullptr, GConnectFlags{});
    };
    connect("candidate-gathering-done", as_gcallback(&on_gathering_done));
    connect("component-state-changed", as_gcallback(&on_state_changed));
    connect("new-selected-pair-full", as_gcallback(&on_new_selected_pair));
    connect("reliable-transport-writable", as_gcallback(&on_writable));
  }

  // The teardown barrier: stop listening, release what the agent holds on
  // servers; close() runs the context until close_completed or the timer.
  void begin_close() {
    g_signal_handlers_disconnect_by_data(agent, this);
    // The receive callback (or the socket watches) stays attached (post() drops what it hands over):
    // without one libnice stops reading the socket, never sees the TURN
    // server's answer to the lifetime-0 Refresh, and the close never completes.
    close_timer = g_timeout_source_new(close_timeout_ms);
    g_source_set_callback(
        close_timer,
        [](gpointer data) -> gboolean {
          auto* self = static_cast<Core*>(data);
          log::warn() << "ice: TURN release did not finish within " << close_timeout_ms << " ms";
          self->close_timed_out = true;
          return G_SOURCE_REMOVE;
        },
        this, nullptr);
    g_source_attach(close_timer, context);
    // The lifetime-0 Refresh is a STUN transaction: with libnice's defaults
    // (200 ms, 7 retransmissions) an unanswering server holds it ~25 s. Give
    // up after 100 + 200 + 400 ms instead, well inside close_timeout_ms.
    g_object_set(agent, "stun-initial-timeout", guint(100), "stun-max-retransmissions", guint(3), nullptr);
    nice_agent_close_async(
        agent,
        [](GObject*, GAsyncResult*, gpointer data) {
          auto* self = static_cast<Core*>(data);
          self->close_completed = true;
        },
        this);
  }
};

// ------------------------------------------------------------------------ session

IceSession::IceSession(uv_loop_t* loop) : loop_(loop), core_(std::make_unique<Core>()) {}

Expected<std::unique_ptr<IceSession>, std::string> IceSession::create(uv_loop_t* loop, IceConfig config,
                                                                      IceEvents events) {
  if (config.relay_only && !config.turn) return Unexpected(std::string("relay_only needs a TURN server"));
  std::unique_ptr<IceSession> session(new IceSession(loop));
  session->events_ = std::move(events);
  Core& core = *session->core_;
  core.config = std::move(config);
  const IceConfig& cfg = core.config;

  core.context = g_main_context_new();
  // This thread runs the context from now on (ContextDriver); acquiring it
  // once makes every prepare/check/dispatch and close()'s iterations legal.
  core.context_acquired = g_main_context_acquire(core.context);
  if (!core.context_acquired) return Unexpected(std::string("g_main_context_acquire failed"));
  unsigned options = 0;
  if (cfg.reliable) options |= NICE_AGENT_OPTION_RELIABLE;
  if (cfg.regular_nomination) options |= NICE_AGENT_OPTION_REGULAR_NOMINATION;
  core.agent = nice_agent_new_full(core.context, NICE_COMPATIBILITY_RFC5245, static_cast<NiceAgentOption>(options));
  if (core.agent == nullptr) return Unexpected(std::string("nice_agent_new_full failed"));
  g_object_set(core.agent, "controlling-mode", gboolean(cfg.controlling), "ice-tcp", gboolean(FALSE), "upnp",
               gboolean(FALSE), "force-relay", gboolean(cfg.relay_only), nullptr);
  // With a TURN server, its Allocate answer already carries our server-
  // reflexive address. Asking a separate STUN server as well stalls gathering
  // for ~2 s per side: libnice 0.1.21 drops that server's Binding answer as
  // "incorrectly multiplexed" on the socket it shares with TURN and waits for
  // its retransmissions to time out (seen in the NAT lab, docs/lab.md).
  std::string stun_ip;
  if (cfg.stun_server && !cfg.turn) {
    stun_ip = cfg.stun_server->ip_string();
    g_object_set(core.agent, "stun-server", stun_ip.c_str(), "stun-server-port", guint(cfg.stun_server->port),
                 nullptr);
  }
  for (const auto& address : cfg.local_addresses) {
    NiceAddress nice_address = to_nice_address(address);
    nice_address_set_port(&nice_address, 0);
    if (!nice_agent_add_local_address(core.agent, &nice_address))
      return Unexpected("nice_agent_add_local_address " + address.ip_string() + " failed");
  }
  core.stream_id = nice_agent_add_stream(core.agent, 1);
  if (core.stream_id == 0) return Unexpected(std::string("nice_agent_add_stream failed"));
  if (cfg.turn) {
    core.failure_context.turn_server = cfg.turn->server.to_string();
    std::string turn_ip = cfg.turn->server.ip_string();
    if (!nice_agent_set_relay_info(core.agent, core.stream_id, component_id, turn_ip.c_str(), cfg.turn->server.port,
                                   cfg.turn->username.c_str(), cfg.turn->password.c_str(), NICE_RELAY_TYPE_TURN_UDP))
      return Unexpected("nice_agent_set_relay_info " + cfg.turn->server.to_string() + " refused");
  }
  if (cfg.reliable &&
      !nice_agent_attach_recv(core.agent, core.stream_id, component_id, core.context, &Core::on_recv, &core))
    return Unexpected(std::string("nice_agent_attach_recv failed"));
  core.connect_signals();

  IceSession* raw = session.get();
  core.driver = std::make_unique<ContextDriver>(
      loop, core.context, [](void* owner) { return static_cast<IceSession*>(owner)->deliver_due(); }, raw);
  if (int rc = core.driver->start(); rc != 0) return Unexpected(std::string("libuv handles for libnice: ") + uv_strerror(rc));
  return session;
}

IceSession::~IceSession() {
  *alive_ = false;
  close();
}

void IceSession::start() {
  if (closed_) return;
  Core* core = core_.get();
  core->invoke([core] {
    if (!nice_agent_gather_candidates(core->agent, core->stream_id))
      core->post(Failed{"gathering failed to start (no usable local address?)"});
    else
      core->watch_sockets();
  });
}

std::string IceSession::explain_failure() {
  std::string reason = explain_ice_failure(core_->failure_context);
  // Not failed yet, only out of time: say so instead.
  const std::string_view checks_failed = "ICE connectivity checks failed";
  return "ICE did not connect in time" + reason.substr(checks_failed.size());
}

void IceSession::set_remote(const IceDescription& remote) {
  if (closed_) return;
  Core* core = core_.get();
  core->invoke([core, remote] {
    if (!nice_agent_set_remote_credentials(core->agent, core->stream_id, remote.ufrag.c_str(),
                                           remote.password.c_str())) {
      core->post(Failed{"remote credentials refused"});
      return;
    }
    for (const auto& line : remote.candidates) core->failure_context.remote_types.push_back(candidate_type_of(line));
    GSList* list = nullptr;
    for (const auto& line : remote.candidates) {
      NiceCandidate* candidate = nice_agent_parse_remote_candidate_sdp(core->agent, core->stream_id, line.c_str());
      if (candidate == nullptr) continue;
      if (candidate->component_id != component_id || candidate->transport != NICE_CANDIDATE_TRANSPORT_UDP) {
        nice_candidate_free(candidate);
        continue;
      }
      list = g_slist_prepend(list, candidate);
    }
    int added = list == nullptr ? 0 : nice_agent_set_remote_candidates(core->agent, core->stream_id, component_id, list);
    g_slist_free_full(list, [](gpointer c) { nice_candidate_free(static_cast<NiceCandidate*>(c)); });
    // No candidates at all is not a failure: a browser that offered only mDNS host
    // names (WebRtcTransport::remote_ice() drops them) is learnt as peer-reflexive
    // from its checks, and the call's ICE deadline bounds the wait.
    if (added <= 0 && !remote.candidates.empty()) core->post(Failed{"no usable remote candidate"});
  });
}

void IceSession::add_remote_candidate(const std::string& line) {
  if (closed_ || !check_ice_candidate_line(line).empty()) return;
  Core* core = core_.get();
  core->invoke([core, line] {  // after set_remote's, in order: the credentials come first
    NiceCandidate* candidate = nice_agent_parse_remote_candidate_sdp(core->agent, core->stream_id, line.c_str());
    if (candidate == nullptr) return;
    if (candidate->component_id == component_id && candidate->transport == NICE_CANDIDATE_TRANSPORT_UDP) {
      core->failure_context.remote_types.push_back(candidate_type_of(line));
      GSList one{candidate, nullptr};
      nice_agent_set_remote_candidates(core->agent, core->stream_id, component_id, &one);
    }
    nice_candidate_free(candidate);
  });
}

size_t IceSession::send(ByteView data) {
  if (closed_ || data.empty()) return 0;
  // nice_agent_send takes a guint length; never more than 2 GiB at once.
  auto length = static_cast<guint>(std::min<size_t>(data.size(), 1u << 30));
  gint sent = nice_agent_send(core_->agent, core_->stream_id, component_id, length,
                              reinterpret_cast<const gchar*>(data.data()));
  return sent < 0 ? 0 : static_cast<size_t>(sent);
}

void IceSession::close() {
  if (closed_) return;
  closed_ = true;
  Core* core = core_.get();
  core->accepting = false;
  core->queue.clear();
  if (core->driver != nullptr) {  // null only when create() failed half-way
    // The loop stops driving the context; this call runs it alone until the
    // agent has released its TURN allocation (or the close timer gives up).
    core->driver.reset();
    g_main_context_push_thread_default(core->context);  // the GTask of close_async completes here
    core->begin_close();
    while (!core->close_completed && !core->close_timed_out) g_main_context_iteration(core->context, TRUE);
    g_main_context_pop_thread_default(core->context);
  } else {
    core->close_completed = true;
  }
  if (core->close_timer != nullptr) {
    g_source_destroy(core->close_timer);
    g_source_unref(core->close_timer);
    core->close_timer = nullptr;
  }
  if (!core->close_completed) {
    // The pending close task holds a reference to the agent; dropping ours
    // would not free it, and nothing will run the context again. Let it go.
    core->agent = nullptr;
  }
  core_.reset();  // unrefs the agent and the context
}

void IceSession::set_data_wakeups(bool wake) {
  if (closed_) return;
  core_->wake_for_data = wake;
  if (wake && !core_->queue.empty()) core_->delivery_due = true;  // the next loop round delivers
}

void IceSession::deliver_pending() {
  if (!closed_) dispatch();
}

bool IceSession::deliver_due() {
  if (closed_) return false;
  if (!core_->delivery_due) return true;
  auto alive = alive_;
  dispatch();
  return *alive && !closed_;
}

void IceSession::dispatch() {
  std::deque<Event> events;
  events.swap(core_->queue);
  core_->delivery_due = false;
  auto alive = alive_;  // a callback may destroy or close this session
  for (auto& event : events) {
    std::visit(
        [this, &alive](auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, Gathered>) {
            if (events_.on_gathered) events_.on_gathered(e.description);
          } else if constexpr (std::is_same_v<T, Connected>) {
            if (events_.on_connected) events_.on_connected(e.pair);
          } else if constexpr (std::is_same_v<T, PairChanged>) {
            if (events_.on_selected_pair_changed) events_.on_selected_pair_changed(e.pair);
          } else if constexpr (std::is_same_v<T, Data>) {
            delivering_arrival_ns_ = e.arrival_ns;
            delivering_source_ = e.source;
            if (events_.on_data) events_.on_data(ByteView(e.bytes));
            if (*alive) {
              delivering_arrival_ns_ = 0;
              delivering_source_.reset();
            }
          } else if constexpr (std::is_same_v<T, Writable>) {
            if (events_.on_writable) events_.on_writable();
          } else {
            if (events_.on_failed) events_.on_failed(e.reason);
          }
        },
        event);
    if (!*alive || closed_) return;
  }
}

}  // namespace tsunagu::terminal
