#include "lan-agent/lan_call_relay.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "proto/signalling.hpp"
#include "lan-agent/terminal_identity.hpp"

namespace tsunagu::lanagent {
namespace sig = tsunagu::proto;
namespace {

std::string text_of(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}

}  // namespace

struct LanCallRelay::TimerTarget {
  LanCallRelay* relay;
  std::string call_id;
};

struct LanCallRelay::LanCall {
  std::string id;
  std::string extension;
  std::string caller;
  proto::TransactionId ring_transaction;
  Bytes ring;  // the node's ring, passed on once the terminal is authenticated
  // The caller's trickled candidates that came before the ring was passed on:
  // a terminal knows no call before its ring, and an unauthenticated one gets
  // nothing of the caller's. Sent after the ring, in order; at most
  // kMaxHeldCandidates (a page gathers a handful).
  std::vector<Bytes> held_candidates;
  proto::SocketAddress address;
  transport::TlsLink* link = nullptr;
  uv_timer_t* timer = nullptr;
  bool authenticated = false;
  bool answered = false;   // the terminal answered the ring (accepted)
  std::string refusal;     // why the connection is being cut before the ring was passed on
};

LanCallRelay::LanCallRelay(uv_loop_t* loop, AgentCore& core, CallSettings settings,
                           std::shared_ptr<security::TlsContext> terminal_tls,
                           std::shared_ptr<TerminalRevocations> revocations, std::function<int64_t()> now,
                           ToNode to_node)
    : loop_(loop), core_(core), settings_(settings), terminal_tls_(std::move(terminal_tls)),
      revocations_(std::move(revocations)), now_(std::move(now)), to_node_(std::move(to_node)) {}

LanCallRelay::~LanCallRelay() { stop(); }

void LanCallRelay::on_node_message(const proto::Message& message, ByteView raw) {
  if (message.message_class == proto::MessageClass::request) {
    if (message.method == sig::method::ring) on_ring(message, raw);
    return;
  }
  if (message.message_class != proto::MessageClass::indication) return;
  if (message.method != sig::method::call_event && message.method != sig::method::call_candidate) return;
  std::string call_id = text_of(message, sig::attr::call_id);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->link == nullptr) return;
  LanCall& call = *it->second;
  if (!call.authenticated) {
    if (message.method == sig::method::call_candidate) {
      if (call.held_candidates.size() < kMaxHeldCandidates)
        call.held_candidates.emplace_back(raw.begin(), raw.end());
      else
        ++stats_.candidates_dropped;
    }
    return;
  }
  call.link->send(raw);
  if (message.method == sig::method::call_event) {
    const auto* state = message.find(sig::attr::call_state);
    if (state && proto::read_u32(*state).value_or(sig::call_state::ended) == sig::call_state::ended)
      finish(call_id, "the call ended");
  }
}

void LanCallRelay::refuse_ring(const proto::TransactionId& ring, uint16_t code, std::string_view reason) {
  ++stats_.refused;
  proto::MessageBuilder refusal(proto::MessageClass::error, sig::method::ring, ring);
  refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
  refusal.add_error(code, reason);
  to_node_.send(refusal.finish());
}

void LanCallRelay::on_ring(const proto::Message& ring, ByteView raw) {
  ++stats_.rings;
  std::string call_id = text_of(ring, sig::attr::call_id);
  std::string user_id = text_of(ring, sig::attr::user_id);
  std::string caller = text_of(ring, sig::attr::caller_id);
  if (call_id.empty() || user_id.empty() || caller.empty())
    return refuse_ring(ring.transaction_id, sig::error::bad_request, "Bad Request: CALL-ID, USER-ID and CALLER-ID");
  if (calls_.contains(call_id)) return;  // a repeat of a ring in progress
  if (!settings_.enabled || !terminal_tls_)
    return refuse_ring(ring.transaction_id, sig::error::offline, "Offline: this agent does not pass calls on");
  LookupAnswer answer = core_.lookup(user_id, caller, now_());
  if (answer.error != 0) {
    log::info() << "ring " << user_id << " from " << caller << ": " << answer.error << " (" << answer.log_detail
                << ")";
    return refuse_ring(ring.transaction_id, answer.error, answer.reason);
  }
  // The node passes a ring for an extension already in a call on (it keeps
  // no services for extensions): call waiting is this agent's to allow.
  size_t engaged = static_cast<size_t>(std::count_if(
      calls_.begin(), calls_.end(), [&](const auto& entry) { return entry.second->extension == answer.extension; }));
  if (engaged > 0) {
    const auto& waiting = settings_.call_waiting;
    bool allowed = engaged == 1 && std::find(waiting.begin(), waiting.end(), answer.extension) != waiting.end();
    if (!allowed) {
      log::info() << "ring " << user_id << " from " << caller << ": busy (extension " << answer.extension
                  << " is in " << engaged << " call(s))";
      return refuse_ring(ring.transaction_id, sig::error::busy,
                         "Busy: extension " + answer.extension + " is in a call");
    }
  }
  // IPv4 first: DHCPv4 leases are what terminals answer on in most LANs.
  proto::SocketAddress address = answer.addresses.front();
  for (const auto& a : answer.addresses)
    if (a.family == proto::SocketAddress::Family::ipv4) {
      address = a;
      break;
    }
  address.port = settings_.terminal_port;

  auto call = std::make_unique<LanCall>();
  call->id = call_id;
  call->extension = answer.extension;
  call->caller = caller;
  call->ring_transaction = ring.transaction_id;
  call->ring.assign(raw.begin(), raw.end());
  call->address = address;
  transport::LinkCallbacks callbacks;
  callbacks.on_ready = [this, call_id](transport::TlsLink& link) { on_terminal_ready(call_id, link); };
  callbacks.on_message = [this, call_id](transport::TlsLink&, ByteView bytes) { on_terminal_message(call_id, bytes); };
  callbacks.on_closed = [this, call_id](transport::TlsLink& link, std::string_view reason) {
    on_terminal_closed(call_id, link, reason);
  };
  log::info() << "ring " << user_id << " from " << caller << ": passing it to the terminal at " << address.to_string();
  auto link = transport::TlsLink::connect(loop_, address, terminal_tls_, {}, std::move(callbacks));
  if (!link) {
    log::info() << "ring " << user_id << ": cannot connect to " << address.to_string() << ": " << link.error().detail;
    return refuse_ring(ring.transaction_id, sig::error::offline,
                       "Offline: cannot connect to the terminal of extension " + answer.extension + " (" +
                           link.error().detail + ")");
  }
  call->link = *link;
  call->timer = new uv_timer_t;
  uv_timer_init(loop_, call->timer);
  call->timer->data = new TimerTarget{this, call_id};
  uv_timer_t* timer = call->timer;
  calls_.emplace(call_id, std::move(call));
  uv_timer_start(timer, [](uv_timer_t* t) {
    auto* target = static_cast<TimerTarget*>(t->data);
    target->relay->on_connect_timeout(target->call_id);
  }, static_cast<uint64_t>(settings_.connect_timeout_ms), 0);
}

void LanCallRelay::on_connect_timeout(const std::string& call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->authenticated || it->second->link == nullptr) return;
  it->second->refusal = "Offline: the terminal of extension " + it->second->extension + " at " +
                        it->second->address.to_string() + " did not answer within " +
                        std::to_string(settings_.connect_timeout_ms) + " ms";
  it->second->link->abort("connect timeout");
}

void LanCallRelay::on_terminal_ready(const std::string& call_id, transport::TlsLink& link) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->link != &link) return;
  LanCall& call = *it->second;
  if (auto refusal = terminal_refusal(link, call.extension, *revocations_)) {
    ++stats_.unauthenticated;
    log::warn() << *refusal << ": the call from " << call.caller << " is refused";
    call.refusal = "Offline: " + *refusal;
    link.abort("terminal certificate refused");
    return;
  }
  ++stats_.connected;
  call.authenticated = true;
  link.send(call.ring);
  call.ring.clear();
  for (const Bytes& candidate : call.held_candidates) link.send(candidate);
  stats_.candidates_held += call.held_candidates.size();
  call.held_candidates.clear();
}

void LanCallRelay::on_terminal_message(const std::string& call_id, ByteView bytes) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || !it->second->authenticated) return;
  LanCall& call = *it->second;
  auto decoded = proto::decode(bytes);
  if (!decoded) return;
  const proto::Message& m = decoded->message;
  if (m.method == sig::method::ring &&
      (m.message_class == proto::MessageClass::success || m.message_class == proto::MessageClass::error)) {
    if (m.transaction_id != call.ring_transaction || call.answered) return;
    to_node_.send(bytes);
    if (m.message_class == proto::MessageClass::error) return finish(call_id, "the terminal refused the call");
    call.answered = true;
    ++stats_.answered;
    return;
  }
  if (m.message_class == proto::MessageClass::indication && m.method == sig::method::call_candidate) {
    if (text_of(m, sig::attr::call_id) == call_id) to_node_.send(bytes);
    return;
  }
  // The path ICE selected, for the node's audit line: only of this call, once answered.
  if (m.message_class == proto::MessageClass::indication && m.method == sig::method::call_path) {
    if (call.answered && text_of(m, sig::attr::call_id) == call_id) {
      ++stats_.paths_relayed;
      log::info() << "call " << call_id << " to extension " << call.extension
                  << ": the terminal's path report relayed to the node";
      to_node_.send(bytes);
    }
    return;
  }
  if (m.message_class == proto::MessageClass::request && m.method == sig::method::hangup) {
    auto ok = proto::MessageBuilder::response_to(m, proto::MessageClass::success);
    ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
    call.link->send(ok.finish());
    to_node_.hang_up(call_id);
    return finish(call_id, "the terminal hung up");
  }
}

void LanCallRelay::on_terminal_closed(const std::string& call_id, transport::TlsLink& link, std::string_view reason) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->link != &link) return;
  LanCall& call = *it->second;
  call.link = nullptr;
  if (!call.answered) {
    std::string why = !call.refusal.empty() ? call.refusal
                                             : "Offline: cannot reach the terminal of extension " + call.extension +
                                                   " at " + call.address.to_string() + " (" + std::string(reason) + ")";
    log::info() << "ring " << call.extension << " from " << call.caller << ": " << why;
    refuse_ring(call.ring_transaction, sig::error::offline, why);
  } else {
    to_node_.hang_up(call_id);
  }
  finish(call_id, reason);
}

void LanCallRelay::finish(const std::string& call_id, std::string_view reason) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  std::unique_ptr<LanCall> call = std::move(it->second);
  calls_.erase(it);
  if (call->link != nullptr) call->link->close(reason);
  if (call->timer != nullptr) {
    uv_timer_stop(call->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(call->timer), [](uv_handle_t* h) {
      delete static_cast<TimerTarget*>(h->data);
      delete reinterpret_cast<uv_timer_t*>(h);
    });
  }
}

void LanCallRelay::node_link_lost() {
  std::vector<std::string> ids;
  for (const auto& [id, call] : calls_) ids.push_back(id);
  for (const auto& id : ids) finish(id, "the node link was lost");
}

void LanCallRelay::stop() { node_link_lost(); }

}  // namespace tsunagu::lanagent
