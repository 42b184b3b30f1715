// Calls from and to a dialing page, over the session's /api/events socket
// (docs/web.md, "Calls from the page"). The page's messages become the
// protocol requests a terminal sends on its link (call, turn_credentials,
// the ring's answer, hangup, call_candidate, call_path), so NodeCore's one call flow
// decides everything (limits, busy, consent timeout, TURN, the end codes);
// the core's ring, call events and candidates come back as JSON events.
// Every description is read (webrtc/session_description.hpp) before it is
// passed on, both ways: the other party gets only one the node could parse.
#include <nlohmann/json.hpp>

#include "proto/signalling.hpp"
#include "rendezvous/web_api.hpp"

namespace tsunagu::rendezvous {
namespace {

namespace sig = tsunagu::proto;
using json = nlohmann::json;

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string text_attribute(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}
uint32_t u32_attribute(const proto::Message& m, uint16_t type, uint32_t otherwise) {
  const auto* a = m.find(type);
  return a ? proto::read_u32(*a).value_or(otherwise) : otherwise;
}

// The STUN and TURN servers of a prepare answer or turn_credentials answer,
// as RTCPeerConnection's iceServers.
json ice_servers_of(const proto::Message& m) {
  json servers = json::array();
  if (const auto* stun = m.find(sig::attr::stun_server))
    if (auto address = proto::read_xor_address(*stun, m)) servers.push_back(json{{"urls", {"stun:" + address->to_string()}}});
  json turn_urls = json::array();
  for (const auto* turn : m.find_all(sig::attr::turn_server))
    if (auto address = proto::read_xor_address(*turn, m)) turn_urls.push_back("turn:" + address->to_string() + "?transport=udp");
  std::string username = text_attribute(m, sig::attr::turn_username);
  if (!turn_urls.empty() && !username.empty())
    servers.push_back(json{{"urls", turn_urls}, {"username", username},
                           {"credential", text_attribute(m, sig::attr::turn_password)}});
  return servers;
}

// What the other party is, as the node knows it (MEDIA-PROFILE): a page, or a terminal.
std::string_view peer_kind(uint32_t profile) { return profile == sig::media_profile::webrtc ? "browser" : "terminal"; }

}  // namespace

void WebApi::call_error(uint64_t session, std::string_view call_id, std::string_view reason) {
  json event{{"type", "call_error"}, {"reason", reason}};
  if (!call_id.empty()) event["call_id"] = call_id;
  emit_to(session, dump(event));
}

void WebApi::socket_message(uint64_t session, std::string_view text, Now now) {
  LinkId link = link_of(session);
  if (link == 0) return;
  auto parsed = parse_browser_message(text);
  if (!parsed) {
    ++browser_counters_.messages_refused;
    if (parsed.error().reason.starts_with("\"sdp\"")) {
      ++browser_counters_.sdp_refused;
      ++browser_counters_.message_sdp_refused;
    }
    if (parsed.error().reason.starts_with("\"candidate\"")) ++browser_counters_.candidates_refused;
    return call_error(session, {}, parsed.error().reason);
  }
  const BrowserMessage& message = *parsed;
  BrowserPage& page = pages_[session];
  using Kind = BrowserMessage::Kind;
  switch (message.kind) {
    case Kind::available: {
      auto taken = core_.take_web_presence(link, now);
      page.available = taken.has_value();
      json event{{"type", "available"}, {"ok", page.available}};
      if (!taken) event["reason"] = taken.error();
      return emit_to(session, dump(event));
    }
    case Kind::unavailable:
      page.available = false;
      page.rings.clear();
      core_.drop_web_presence(link, /*end_calls=*/false, now);
      return emit_to(session, dump(json{{"type", "available"}, {"ok", false}, {"reason", "not taking calls"}}));
    case Kind::call: return place_call(session, message, now);
    case Kind::offer: return ring_with_offer(session, message, now);
    case Kind::answer: return answer_ring(session, message, now);
    case Kind::decline:
    case Kind::hangup: {
      if (auto ring = page.rings.find(message.call_id); ring != page.rings.end()) {
        proto::TransactionId id = ring->second;
        page.rings.erase(ring);
        bool busy = message.kind == Kind::decline && message.busy;
        return refuse_ring(link, id, busy ? sig::error::busy : sig::error::declined,
                           busy ? "Busy: the callee is busy" : "Declined: the callee declined", now);
      }
      if (message.kind == Kind::decline) return call_error(session, message.call_id, "no ring with that call_id");
      proto::TransactionId txn = fresh_transaction();
      proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::hangup, txn);
      b.add_string(sig::attr::call_id, message.call_id);
      return send(link, std::move(b), txn, nullptr, nullptr, now);
    }
    case Kind::ice_servers: {
      proto::TransactionId txn = fresh_transaction();
      proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::turn_credentials, txn);
      b.add_string(sig::attr::call_id, message.call_id);
      return send_call_request(session, std::move(b), txn, message.call_id,
                               [this, session, call_id = message.call_id](const proto::Message& reply, Now) {
                                 emit_to(session, dump(json{{"type", "ice_servers"}, {"call_id", call_id},
                                                            {"ice_servers", ice_servers_of(reply)}}));
                               }, now);
    }
    case Kind::call_path: {
      ++browser_counters_.paths_reported;
      proto::TransactionId txn = fresh_transaction();
      proto::MessageBuilder b = core_message(proto::MessageClass::indication, sig::method::call_path, txn);
      b.add_string(sig::attr::call_id, message.call_id);
      b.add_string(sig::attr::ice_path, message.path);
      return send(link, std::move(b), txn, nullptr, nullptr, now);
    }
    case Kind::candidate: {
      proto::TransactionId txn = fresh_transaction();
      proto::MessageBuilder b = core_message(proto::MessageClass::indication, sig::method::call_candidate, txn);
      b.add_string(sig::attr::call_id, message.call_id);
      b.add_string(sig::attr::ice_candidate, message.candidate);
      return send(link, std::move(b), txn, nullptr, nullptr, now);
    }
  }
}

// A request whose error answer becomes call_error (with the core's reason and code).
void WebApi::send_call_request(uint64_t session, proto::MessageBuilder builder, const proto::TransactionId& id,
                               std::string call_id, std::function<void(const proto::Message&, Now)> on_success,
                               Now now) {
  send(link_of(session), std::move(builder), id,
       [this, session, call_id, on_success = std::move(on_success)](const proto::Message& reply, Now at) {
         if (reply.message_class != proto::MessageClass::error) return on_success(reply, at);
         const auto* code = reply.find(proto::attr::error_code);
         auto error = code ? proto::read_error_code(*code) : std::nullopt;
         json event{{"type", "call_failed"}, {"code", error ? error->code : sig::error::server_error},
                    {"reason", error ? std::string(error->reason) : std::string("the node did not say why")}};
         if (!call_id.empty()) event["call_id"] = call_id;
         emit_to(session, dump(event));
       },
       nullptr, now);
}

void WebApi::place_call(uint64_t session, const BrowserMessage& message, Now now) {
  proto::TransactionId txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::call, txn);
  b.add_string(sig::attr::user_id, message.to);
  b.add_u32(sig::attr::call_media, 0);
  b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
  send_call_request(session, std::move(b), txn, {}, [this, session, to = message.to](const proto::Message& reply, Now) {
    emit_to(session, dump(json{{"type", "call_prepared"},
                               {"call_id", text_attribute(reply, sig::attr::call_id)},
                               {"to", to},
                               {"peer", peer_kind(u32_attribute(reply, sig::attr::media_profile, 0))},
                               {"ice_servers", ice_servers_of(reply)}}));
  }, now);
}

void WebApi::ring_with_offer(uint64_t session, const BrowserMessage& message, Now now) {
  proto::TransactionId txn = fresh_transaction();
  proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::call, txn);
  b.add_string(sig::attr::call_id, message.call_id);
  b.add_string(sig::attr::ice_description, message.sdp);
  b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
  send_call_request(session, std::move(b), txn, message.call_id,
                    [this, session, call_id = message.call_id](const proto::Message& reply, Now) {
                      ++browser_counters_.calls_placed;
                      bool routed = u32_attribute(reply, sig::attr::call_state, 0) == sig::call_state::routed_to_agent;
                      emit_to(session, dump(json{{"type", "ringing"}, {"call_id", call_id}, {"via_agent", routed}}));
                    }, now);
}

void WebApi::answer_ring(uint64_t session, const BrowserMessage& message, Now now) {
  BrowserPage& page = pages_[session];
  auto ring = page.rings.find(message.call_id);
  if (ring == page.rings.end()) return call_error(session, message.call_id, "no ring with that call_id");
  proto::MessageBuilder ok = core_message(proto::MessageClass::success, sig::method::ring, ring->second);
  page.rings.erase(ring);
  ok.add_string(sig::attr::ice_description, message.sdp);
  ok.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
  LinkId link = link_of(session);
  ++browser_counters_.calls_answered;
  core_.message(link, ok.finish(), now);
}

void WebApi::refuse_ring(LinkId link, const proto::TransactionId& ring, uint16_t code, std::string_view reason, Now now) {
  proto::MessageBuilder refusal = core_message(proto::MessageClass::error, sig::method::ring, ring);
  refusal.add_error(code, reason);
  core_.message(link, refusal.finish(), now);
}

bool WebApi::browser_call_message(LinkId link, const proto::Message& message, Now now) {
  bool ring = message.message_class == proto::MessageClass::request && message.method == sig::method::ring;
  bool event = message.message_class == proto::MessageClass::indication &&
               (message.method == sig::method::call_event || message.method == sig::method::call_candidate);
  if (!ring && !event) return false;
  auto session = session_on(link);
  std::string call_id = text_attribute(message, sig::attr::call_id);
  if (ring) {
    auto page = session ? pages_.find(*session) : pages_.end();
    std::string offer = text_attribute(message, sig::attr::ice_description);
    if (page == pages_.end() || !page->second.available) {
      ++browser_counters_.rings_refused;
      refuse_ring(link, message.transaction_id, sig::error::declined, "Declined: the page no longer takes calls", now);
      return true;
    }
    if (u32_attribute(message, sig::attr::media_profile, 0) != sig::media_profile::webrtc) {
      ++browser_counters_.rings_refused;
      refuse_ring(link, message.transaction_id, sig::error::declined,
                  "Declined: the callee is a browser and the caller's terminal does not speak WebRTC", now);
      return true;
    }
    if (auto refusal = sdp_refusal(offer)) {
      ++browser_counters_.sdp_refused;
      ++browser_counters_.rings_refused;
      refuse_ring(link, message.transaction_id, sig::error::declined, "Declined: the caller's offer: " + *refusal, now);
      return true;
    }
    ++browser_counters_.rings_delivered;
    page->second.rings[call_id] = message.transaction_id;
    emit_to(*session, dump(json{{"type", "ring"},
                                {"call_id", call_id},
                                {"from", text_attribute(message, sig::attr::caller_id)},
                                {"sdp", offer},
                                {"in_call", (u32_attribute(message, sig::attr::presence, 0) & sig::presence_flag::in_call) != 0}}));
    return true;
  }
  if (!session) return true;
  if (message.method == sig::method::call_candidate) {
    emit_to(*session, dump(json{{"type", "candidate"}, {"call_id", call_id},
                                {"candidate", text_attribute(message, sig::attr::ice_candidate)}}));
    return true;
  }
  uint32_t state = u32_attribute(message, sig::attr::call_state, sig::call_state::ended);
  if (state == sig::call_state::accepted) {
    json accepted{{"type", "accepted"}, {"call_id", call_id}};
    if (const auto* answer = message.find(sig::attr::ice_description)) {
      std::string sdp(proto::read_string(*answer));
      if (auto refusal = sdp_refusal(sdp)) {
        // The callee's terminal answered with something a browser cannot take: end it, saying why.
        ++browser_counters_.sdp_refused;
        proto::TransactionId txn = fresh_transaction();
        proto::MessageBuilder b = core_message(proto::MessageClass::request, sig::method::hangup, txn);
        b.add_string(sig::attr::call_id, call_id);
        send(link, std::move(b), txn, nullptr, nullptr, now);
        emit_to(*session, dump(json{{"type", "ended"}, {"call_id", call_id}, {"code", sig::error::declined},
                                    {"reason", "the callee's answer: " + *refusal}}));
        return true;
      }
      accepted["sdp"] = sdp;
    }
    emit_to(*session, dump(accepted));
    return true;
  }
  if (state == sig::call_state::ended) {
    if (auto page = pages_.find(*session); page != pages_.end()) page->second.rings.erase(call_id);
    emit_to(*session, dump(json{{"type", "ended"}, {"call_id", call_id},
                                {"code", u32_attribute(message, sig::attr::end_code, 0)},
                                {"reason", text_attribute(message, sig::attr::notice_reason)}}));
  }
  return true;
}

void WebApi::socket_closed(uint64_t session, Now now) {
  unsubscribe(session);
  auto page = pages_.find(session);
  if (page == pages_.end()) return;  // it never spoke of calls
  pages_.erase(page);
  if (LinkId link = link_of(session); link != 0) core_.drop_web_presence(link, /*end_calls=*/true, now);
}

}  // namespace tsunagu::rendezvous
