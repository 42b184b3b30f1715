// Call signalling of NodeCore: TURN credentials, call -> ring -> accepted or
// ended, hang-up, trickled candidates, consent timeout and lost links.
//
//   caller                  node                      callee
//   call(USER-ID) -->
//                      <-- success(CALL-ID, preparing, STUN/TURN for the caller)
//   call(CALL-ID, offer) -->
//                      <-- success(CALL-ID)  (ringing)
//                           ring(CALL-ID, caller, offer, STUN) -->
//                           (accepting: turn_credentials(CALL-ID) -->  <-- TURN)
//                                                <-- success(answer)   or error 603/486
//   <-- call_event(accepted, answer, KEY-MATERIAL)
//                           call_event(accepted, KEY-MATERIAL) -->
//   hangup(CALL-ID) -->                                               (either side)
//                           call_event(ended, END-CODE 200) -->
#include <algorithm>
#include <tuple>

#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"
#include "security/digest.hpp"
#include "security/encoding.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;
constexpr size_t max_ice_description = 4096;
constexpr uint8_t max_turn_credentials_per_party = 2;  // a retry after a lost answer, no more

// Ring refusals a LAN agent may answer for its terminal, passed on as they are.
bool passed_from_agent(uint16_t code) {
  switch (code) {
    case sig::error::agent_policy_refused:
    case sig::error::unknown_user:
    case sig::error::offline:
    case sig::error::no_live_lease:
    case sig::error::agent_timeout:
    case sig::error::server_error: return true;
    default: return false;
  }
}

// The parties whose presence shows the call: a connection agent's card
// holder has none (its caller ID is no account's).
std::vector<std::string> presence_parties(const Call& call) {
  if (call.caller_card_holder) return {call.callee};
  return {call.caller, call.callee};
}
}  // namespace

TurnCredentials mint_turn_credentials(std::string_view secret, std::string_view user, uint64_t expiry_unix) {
  TurnCredentials credentials;
  credentials.username = std::to_string(expiry_unix) + ":" + std::string(user);
  credentials.password = security::base64_encode(security::hmac_sha1(as_bytes(secret), as_bytes(credentials.username)));
  return credentials;
}

void NodeCore::add_stun_attribute(proto::MessageBuilder& builder) {
  if (settings_.stun_server) builder.add_xor_address(sig::attr::stun_server, *settings_.stun_server);
}

void NodeCore::add_turn_attributes(proto::MessageBuilder& builder, const std::string& user, Now now,
                                   const std::vector<proto::SocketAddress>* servers) {
  add_stun_attribute(builder);
  if (servers == nullptr || servers->empty()) servers = &settings_.turn_servers;
  if (settings_.turn_secret.empty() || servers->empty()) return;
  auto credentials = mint_turn_credentials(settings_.turn_secret, user, now.unix_s + settings_.turn_lifetime_s);
  for (const auto& server : *servers) builder.add_xor_address(sig::attr::turn_server, server);
  builder.add_string(sig::attr::turn_username, credentials.username);
  builder.add_string(sig::attr::turn_password, credentials.password);
  builder.add_u32(sig::attr::turn_lifetime, settings_.turn_lifetime_s);
}

// TURN credentials relay anything to anywhere for their lifetime, so they go
// only to a party of a call in progress: the caller once it has placed (or
// prepared) the call, the callee while it is rung or after it accepted; at
// most twice per party and call (issue 11 §5).
void NodeCore::handle_turn_credentials(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  const std::string* me = caller_of(state);
  if (me == nullptr) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  const auto* id = request.find(sig::attr::call_id);
  if (id == nullptr)
    return reply_error(link, request, sig::error::bad_request,
                       "Bad Request: CALL-ID is required (TURN credentials are handed out inside a call only)");
  Call* found = calls_->find(std::string(proto::read_string(*id)));
  uint8_t* issued = nullptr;
  if (found != nullptr) {
    Call& call = *found;
    if (call.caller_link == link && call.caller == *me) issued = &call.turn_issued_caller;
    else if (call.callee_link == link && call.callee == *me && !call.via_agent) issued = &call.turn_issued_callee;
  }
  if (issued == nullptr)
    return reply_error(link, request, sig::error::no_such_call, "Call Does Not Exist: no call with that CALL-ID for you");
  if (*issued >= max_turn_credentials_per_party)
    return reply_error(link, request, sig::error::too_many_attempts,
                       "Too Many Attempts: TURN credentials were handed out for this call already");
  ++*issued;
  auto builder = success(request);
  add_turn_attributes(builder, *me, now,
                      issued == &found->turn_issued_caller ? card_turn_servers(found->id) : nullptr);
  send(link, builder.finish());
}

bool NodeCore::user_in_accepted_call(const std::string& user) const { return calls_->counts(user).accepted > 0; }

std::optional<NodeCore::CallTarget> NodeCore::reach_callee(LinkId link, LinkState& state,
                                                           const proto::Message& request, const std::string& callee) {
  // A routed ID (EXT@DOMAIN, +NUMBER of an agent) is rung through its LAN
  // agent, which passes the ring to the terminal at its leased address.
  Route route = find_route(callee);
  if (route.storage_error) {
    reply_storage_error(link, request, *route.storage_error);
    return std::nullopt;
  }
  if (route.routed && !route.agent) {
    reply_error(link, request, sig::error::agent_offline,
                "Agent Offline: the LAN agent for " + route.route + " is not connected");
    return std::nullopt;
  }
  CallTarget target;
  bool call_waiting = false;
  if (route.agent) {
    target.link = *route.agent;
    target.via_agent = true;
    // An extension has no account here: its agent knows which extensions
    // take a second call ([calls] call_waiting) and answers busy for the rest.
    call_waiting = true;
  } else {
    auto account = accounts_.find(callee);
    if (!account) {
      reply_storage_error(link, request, account.error());
      return std::nullopt;
    }
    const PresenceRow* row = presence_.find(callee);
    if (!account->has_value() || !visible_to(**account, *caller_of(state))) {
      // Hidden from this caller: as if unknown, online or not (a ring would tell).
      reply_error(link, request, sig::error::unknown_user);
      return std::nullopt;
    }
    if (row == nullptr) {
      reply_error(link, request, sig::error::offline, "Offline: the user is not logged in");
      return std::nullopt;
    }
    target.link = row->link;
    call_waiting = ((*account)->services & sig::service_flag::call_waiting) != 0;
  }
  CallCounts callee_counts = calls_->counts(callee);
  target.engaged = callee_counts.accepted > 0 || callee_counts.ringing_in > 0;
  if (target.engaged && !call_waiting) {
    reply_error(link, request, sig::error::busy, "Busy: the user is in a call");
    return std::nullopt;
  }
  return target;
}

// A call request comes in one of three forms (docs/protocol.md):
//   USER-ID                          prepare: a call ID and the caller's STUN/TURN settings, nothing rings
//   CALL-ID, ICE-DESCRIPTION         ring the prepared call's callee with this offer
//   USER-ID, ICE-DESCRIPTION         both at once (no TURN credentials for the caller)
void NodeCore::handle_call(LinkId link, LinkState& state, const proto::Message& request, Now now,
                           const CardUse* card) {
  if (card == nullptr && request.find(sig::attr::card) != nullptr) return begin_card_check(link, state, request, now);
  const auto* target_attribute = request.find(sig::attr::user_id);
  const auto* offer = request.find(sig::attr::ice_description);
  const auto* prepared_id = request.find(sig::attr::call_id);
  // A connection agent's card holder (no account here) places each new call
  // with its card; only its prepared call goes on without one.
  const std::string* caller = caller_of(state);
  if (caller == nullptr || (!state.user && card == nullptr && prepared_id == nullptr))
    return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  if (offer != nullptr && offer->value.size() > max_ice_description)
    return reply_error(link, request, sig::error::bad_request, "Bad Request: ICE-DESCRIPTION too large");

  if (prepared_id != nullptr) {
    if (offer == nullptr)
      return reply_error(link, request, sig::error::bad_request, "Bad Request: ICE-DESCRIPTION is required with CALL-ID");
    Call* prepared = calls_->find(std::string(proto::read_string(*prepared_id)));
    if (prepared == nullptr || prepared->caller_link != link || prepared->state != sig::call_state::preparing ||
        (target_attribute != nullptr && proto::read_string(*target_attribute) != prepared->callee))
      return reply_error(link, request, sig::error::no_such_call,
                         "Call Does Not Exist: no prepared call with that CALL-ID for you");
    std::string call_id = prepared->id;
    auto target = reach_callee(link, state, request, prepared->callee);
    if (!target) return end_call(call_id, sig::error::cancelled, {}, link);  // the refusal was the answer
    note_media_profiles(*calls_->find(call_id), request, *target);
    return ring_callee(link, request, *calls_->find(call_id), *target, proto::read_string(*offer), now);
  }

  if (target_attribute == nullptr)
    return reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID is required");
  std::string callee(proto::read_string(*target_attribute));
  if (!sig::valid_user_id(callee)) return reply_error(link, request, sig::error::invalid_user_id);
  if (callee == *caller) return reply_error(link, request, sig::error::bad_request, "Bad Request: calling yourself");
  std::string source = source_key(state.observed);
  size_t by_user = calls_->counts(*caller).ringing_out, by_source = calls_->ringing_from(source);
  if (by_user >= settings_.max_ringing_per_user || by_source >= settings_.max_ringing_per_source)
    return reply_error(link, request, sig::error::too_many_attempts, "Too Many Attempts: too many calls ringing");
  auto target = reach_callee(link, state, request, callee);
  if (!target) return;

  Call call;
  call.id = to_hex(random_bytes(16));
  call.caller = *caller;
  call.caller_card_holder = !state.user;
  call.callee = callee;
  call.caller_link = link;
  call.caller_source = source;
  call.state = sig::call_state::preparing;
  fill_random(call.key);
  uint32_t media = 0;
  if (const auto* m = request.find(sig::attr::call_media)) media = proto::read_u32(*m).value_or(0) == 1 ? 1 : 0;
  call.media = media;
  note_media_profiles(call, request, *target);
  call.placed_ms = now.mono_ms;
  // Gathering with TURN takes seconds; an unused preparation ends like an unanswered ring.
  deadlines_.schedule(now.mono_ms + uint64_t{settings_.consent_timeout_s} * 1000, DeadlineKind::ring, call.id);
  Call& placed = calls_->insert(std::move(call));
  audit_call("placed", placed, "source", state.observed.to_string());
  if (card != nullptr) card_call_placed(placed, *card);
  if (offer != nullptr) return ring_callee(link, request, placed, *target, proto::read_string(*offer), now);

  placed.turn_issued_caller = 1;
  auto ok = success(request);
  ok.add_string(sig::attr::call_id, placed.id);
  ok.add_u32(sig::attr::call_state, sig::call_state::preparing);
  add_other_profile(ok, placed, link);
  add_turn_attributes(ok, *caller, now, card_turn_servers(placed.id));
  send(link, ok.finish());
}

void NodeCore::ring_callee(LinkId link, const proto::Message& request, Call& call, const CallTarget& target,
                           std::string_view offer, Now now) {
  proto::TransactionId ring_transaction;
  fill_random(ring_transaction.bytes);
  calls_->ring(call, target.link, target.via_agent, ring_transaction);
  deadlines_.schedule(now.mono_ms + uint64_t{settings_.consent_timeout_s} * 1000, DeadlineKind::ring, call.id);

  proto::MessageBuilder ring(proto::MessageClass::request, sig::method::ring, call.ring_transaction);
  ring.add_u32(sig::attr::protocol_version, sig::protocol_version);
  ring.add_string(sig::attr::call_id, call.id);
  ring.add_string(sig::attr::caller_id, call.caller);
  ring.add_string(sig::attr::user_id, call.callee);  // which extension, for an agent
  ring.add_string(sig::attr::ice_description, offer);
  ring.add_u32(sig::attr::presence, target.engaged ? sig::presence_flag::in_call : 0);  // call waiting
  ring.add_u32(sig::attr::call_media, call.media);
  add_other_profile(ring, call, call.callee_link);
  // A user asks for TURN credentials when it accepts; a LAN terminal cannot
  // reach the node, so its agent (the operator's own) passes them on.
  if (call.via_agent) add_turn_attributes(ring, call.callee, now);
  else add_stun_attribute(ring);
  send(call.callee_link, ring.finish());

  auto ok = success(request);
  ok.add_string(sig::attr::call_id, call.id);
  ok.add_u32(sig::attr::call_state, call.via_agent ? sig::call_state::routed_to_agent : sig::call_state::ringing);
  send(link, ok.finish());
  ++counters_.calls_offered;
  audit_call("rung", call, "via", call.via_agent ? "agent" : "direct");
}

void NodeCore::send_call_event(LinkId link, const Call& call, uint32_t state, uint16_t code, std::string_view reason) {
  proto::TransactionId id;
  fill_random(id.bytes);
  proto::MessageBuilder event(proto::MessageClass::indication, sig::method::call_event, id);
  event.add_u32(sig::attr::protocol_version, sig::protocol_version);
  event.add_string(sig::attr::call_id, call.id);
  event.add_u32(sig::attr::call_state, state);
  event.add_u32(sig::attr::end_code, code);
  if (!reason.empty()) event.add_string(sig::attr::notice_reason, reason);
  send(link, event.finish());
}

void NodeCore::end_call(const std::string& call_id, uint16_t code, std::string_view reason,
                        std::optional<LinkId> tell_not) {
  auto ended = calls_->erase(call_id);
  if (!ended) return;
  ++counters_.calls_ended[static_cast<size_t>(call_end_reason(code))];
  const Call& call = *ended;
  audit_call_ended(call, code);
  deadlines_.cancel(DeadlineKind::ring, call.id);
  card_call_ended(call.id);
  for (LinkId party : {call.caller_link, call.callee_link})
    if (party != 0 && party != tell_not && links_.contains(party)) send_call_event(party, call, sig::call_state::ended, code, reason);
  if (call.state == sig::call_state::accepted) {
    for (const auto& user : presence_parties(call))
      if (!user_in_accepted_call(user) && presence_.set_in_call(user, false)) presence_changed(user);
  }
}

void NodeCore::handle_ring_answer(LinkId link, const proto::Message& response, Now) {
  Call* rung = calls_->find_ring(response.transaction_id);
  if (rung == nullptr || rung->callee_link != link) return;  // late answer to a call that already ended, or not its callee
  Call& call = *rung;
  std::string call_id = call.id;
  calls_->forget_ring(response.transaction_id);
  deadlines_.cancel(DeadlineKind::ring, call.id);
  if (response.message_class == proto::MessageClass::error) {
    const auto* code = response.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    if (call.via_agent && parsed && passed_from_agent(parsed->code)) {
      // The agent's own refusal (no lease, policy, the terminal unreachable or
      // not authenticated) reaches the caller with the agent's reason.
      end_call(call_id, parsed->code, parsed->reason, link);
      return;
    }
    uint16_t number = parsed && (parsed->code == sig::error::busy) ? sig::error::busy : sig::error::declined;
    std::string reason = number == sig::error::busy ? "Busy: the callee is busy" : "Declined: the callee declined";
    if (parsed && own_ring_refusal(link)) reason = std::string(parsed->reason);
    end_call(call_id, number, reason, link);
    return;
  }
  const auto* answer = response.find(sig::attr::ice_description);
  if (answer == nullptr || answer->value.size() > max_ice_description) {
    end_call(call_id, sig::error::declined, "Declined: the callee's answer was malformed", std::nullopt);
    return;
  }
  calls_->accept(call);
  call.accepted_ms = now_.mono_ms;
  card_call_accepted(call, now_);
  ++counters_.calls_accepted;
  audit_call("accepted", call);
  for (const auto& user : presence_parties(call))
    if (presence_.set_in_call(user, true)) presence_changed(user);
  for (LinkId party : {call.caller_link, call.callee_link}) {
    proto::TransactionId id;
    fill_random(id.bytes);
    proto::MessageBuilder event(proto::MessageClass::indication, sig::method::call_event, id);
    event.add_u32(sig::attr::protocol_version, sig::protocol_version);
    event.add_string(sig::attr::call_id, call.id);
    event.add_u32(sig::attr::call_state, sig::call_state::accepted);
    event.add(sig::attr::key_material, call.key);
    add_other_profile(event, call, party);
    if (party == call.caller_link) {
      event.add_string(sig::attr::ice_description, proto::read_string(*answer));
      if (const PresenceRow* row = presence_.find(call.callee)) {
        for (const auto& r : row->reported) event.add_xor_address(sig::attr::reported_address, r);
        event.add_xor_address(sig::attr::observed_address, row->observed);
      }
    } else if (const PresenceRow* row = presence_.find(call.caller)) {
      for (const auto& r : row->reported) event.add_xor_address(sig::attr::reported_address, r);
      event.add_xor_address(sig::attr::observed_address, row->observed);
    }
    send(party, event.finish());
  }
}

void NodeCore::handle_hangup(LinkId link, LinkState& state, const proto::Message& request, Now) {
  if (caller_of(state) == nullptr && !state.agent_ready)
    return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  const auto* id = request.find(sig::attr::call_id);
  if (id == nullptr) return reply_error(link, request, sig::error::bad_request, "Bad Request: CALL-ID is required");
  Call* call = calls_->find(std::string(proto::read_string(*id)));
  if (call == nullptr || (call->caller_link != link && call->callee_link != link)) {
    send(link, success(request).finish());  // idempotent: already over
    return;
  }
  bool ringing = call->state == sig::call_state::ringing || call->state == sig::call_state::preparing;
  bool by_caller = call->caller_link == link;
  std::string call_id = call->id;
  send(link, success(request).finish());
  // A party that refused the other's media says why (a terminal whose DTLS
  // handshake with a page met another certificate than the signalled one).
  if (const auto* refusal = request.find(proto::attr::error_code); refusal != nullptr && !ringing) {
    auto error = proto::read_error_code(*refusal);
    if (error && error->code == sig::error::media_refused) {
      std::string reason = "Not Acceptable Here: " + std::string(error->reason).substr(0, 200);
      return end_call(call_id, sig::error::media_refused, reason, link);
    }
  }
  if (ringing && by_caller) end_call(call_id, sig::error::cancelled, "Cancelled: the caller hung up", link);
  else if (ringing) end_call(call_id, sig::error::declined, "Declined: the callee declined", link);
  else end_call(call_id, sig::error::hung_up, "hung up", link);
}

void NodeCore::handle_call_candidate(LinkId link, LinkState& state, const proto::Message& indication) {
  if (caller_of(state) == nullptr && !state.agent_ready) return;
  const auto* id = indication.find(sig::attr::call_id);
  const auto* candidate = indication.find(sig::attr::ice_candidate);
  if (id == nullptr || candidate == nullptr || candidate->value.size() > 512) return;
  Call* call = calls_->find(std::string(proto::read_string(*id)));
  if (call == nullptr) return;
  LinkId other;
  if (call->caller_link == link) other = call->callee_link;
  else if (call->callee_link == link) other = call->caller_link;
  else return;
  if (other == 0) return;  // prepared, not rung yet
  if (!admit_candidate(*call, candidate->value.size())) return;
  proto::TransactionId fresh;
  fill_random(fresh.bytes);
  proto::MessageBuilder relay(proto::MessageClass::indication, sig::method::call_candidate, fresh);
  relay.add_u32(sig::attr::protocol_version, sig::protocol_version);
  relay.add_string(sig::attr::call_id, call->id);
  relay.add_string(sig::attr::ice_candidate, proto::read_string(*candidate));
  send(other, relay.finish());
}

void NodeCore::calls_link_closed(LinkId link) {
  for (const auto& id : calls_->calls_on(link))
    end_call(id, sig::error::link_lost, "Link Lost: the other side's link was lost", link);
}

void NodeCore::ring_expired(const std::string& call_id) {
  const Call* call = calls_->find(call_id);
  bool prepared = call != nullptr && call->state == sig::call_state::preparing;
  end_call(call_id, sig::error::no_answer,
           prepared ? "No Answer: the call was prepared but not placed in time"
                    : "No Answer: the callee did not answer in time",
           std::nullopt);
}

std::vector<NodeCore::CallView> NodeCore::calls_view() const {
  std::vector<CallView> view;
  for (const Call* call : calls_->all()) {
    std::string_view state = call->state == sig::call_state::accepted  ? "accepted"
                             : call->state == sig::call_state::ringing ? "ringing"
                                                                       : "preparing";
    view.push_back(CallView{call->caller, call->callee, state, call->via_agent});
  }
  std::sort(view.begin(), view.end(), [](const CallView& a, const CallView& b) {
    return std::tie(a.caller, a.callee) < std::tie(b.caller, b.callee);
  });
  return view;
}

}  // namespace tsunagu::rendezvous
