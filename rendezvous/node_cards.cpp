// Calls paid from an access card (issue 15; docs/cards.md, "Calls on a card").
//
//   caller                                    node
//   call(USER-ID, CARD, CARD-PASSWORD, CARD-ROUTE) -->
//        the card decoded and verified, its ledger entry read, revocation,
//        units and calls in progress checked (admit_card with the password
//        taken as right: a card refused for anything else costs no scrypt);
//        then the password verified on the thread pool, like a login's;
//        then admit_card again with the ledger and the calls as they are now
//                                         <-- error 402 CARD-REFUSAL (refused; audited)
//                                         <-- card_units(CALL-ID, CARD-UNITS)
//                                         <-- success(CALL-ID, preparing, ...) as any call
//   ... accepted: the first period is debited at once, then one at the start
//   of each period (debit_interval_s), each in the turn's write transaction;
//                                         <-- card_units(CALL-ID, CARD-UNITS[, CARD-WARNING]) after its commit
//   the card cannot pay a period:         <-- call_event(ended, END-CODE 402 "Units Exhausted: ...")
//
// card_status(CARD, CARD-PASSWORD) takes the same checks (without the calls
// in progress and the units) and answers CARD-UNITS. card_password(CARD,
// CARD-PASSWORD, CARD-NEW-PASSWORD) takes them too, then hashes the new
// password on the thread pool and stores the hash in the ledger: the
// holder's password replaces the issuer's (seed 002, [0030]). card_area answers the
// area of the link's source address ([cards.areas]) to a terminal that does
// not know its own.
#include <algorithm>

#include "cards/card_password.hpp"
#include "cards/relay_uri.hpp"
#include "proto/signalling.hpp"
#include "rendezvous/card_agent.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

// The route the terminal says it chose, as the areas list it in any area, and its kind.
const cards::AccessPoint* find_access_point(const std::vector<cards::Area>& areas, std::string_view name,
                                            cards::RouteKind* kind) {
  for (const auto& area : areas)
    for (auto [list, list_kind] : {std::pair{&area.internet, cards::RouteKind::internet},
                                   std::pair{&area.premium, cards::RouteKind::premium},
                                   std::pair{&area.agents, cards::RouteKind::agent}})
      for (const auto& point : *list)
        if (point.name == name) {
          *kind = list_kind;
          return &point;
        }
  return nullptr;
}

// The route's relays a caller can be handed as TURN servers: turn: over UDP
// (what the terminal's ICE agent allocates on).
std::vector<cards::RelayUri> route_turn_relays(const cards::AccessPoint& route) {
  std::vector<cards::RelayUri> relays;
  for (const auto& text : route.relays) {
    auto relay = cards::parse_relay_uri(text);
    if (relay && relay->scheme == cards::RelayScheme::turn && !relay->tcp) relays.push_back(std::move(*relay));
  }
  return relays;
}

// Of those, the ones named by host name rather than IP literal: the node
// resolves them off its loop before handing them out.
std::vector<std::string> route_relay_names(const cards::AccessPoint& route) {
  std::vector<std::string> names;
  for (const auto& relay : route_turn_relays(route))
    if (!proto::SocketAddress::parse(relay.host_port()) &&
        std::find(names.begin(), names.end(), relay.host) == names.end())
      names.push_back(relay.host);
  return names;
}

uint64_t update_version_held(const proto::Message& request) {
  const auto* held = request.find(sig::attr::card_update_version);
  return held ? proto::read_u64(*held).value_or(0) : 0;
}

}  // namespace

std::vector<proto::SocketAddress> NodeCore::route_turn_servers(const cards::AccessPoint& route) const {
  std::vector<proto::SocketAddress> servers;
  for (const auto& relay : route_turn_relays(route)) {
    if (auto literal = proto::SocketAddress::parse(relay.host_port())) servers.push_back(*literal);
    else if (auto named = relay_names_.address(relay.host, relay.port)) servers.push_back(*named);
  }
  return servers;
}

bool NodeCore::relay_name_resolved(const std::string& host, std::vector<proto::SocketAddress> addresses, Now now) {
  bool first_failure = addresses.empty() && relay_names_.failed(host, now.mono_ms);
  if (!addresses.empty()) relay_names_.resolved(host, std::move(addresses), now.mono_ms);
  std::vector<uint64_t> ready;
  for (const auto& [job, result] : card_checks_awaiting_names_) {
    auto pending = pending_card_checks_.find(job);
    if (pending == pending_card_checks_.end() ||
        std::none_of(pending->second.relay_names.begin(), pending->second.relay_names.end(),
                     [&](const std::string& name) { return relay_names_.in_flight(name); }))
      ready.push_back(job);
  }
  for (uint64_t job : ready) resume_card_check(job, now);
  return first_failure;
}

void NodeCore::resume_card_check(uint64_t job, Now now) {
  auto waiting = card_checks_awaiting_names_.find(job);
  if (waiting == card_checks_awaiting_names_.end()) return;
  PasswordJobResult result = std::move(waiting->second);
  card_checks_awaiting_names_.erase(waiting);
  deadlines_.cancel(DeadlineKind::relay_names, std::to_string(job));
  auto pending = pending_card_checks_.find(job);
  if (pending == pending_card_checks_.end()) return;
  pending->second.relay_names_waited = true;
  card_password_checked(result, now);
}

void NodeCore::audit_card(std::string_view result, uint64_t serial, const LinkState& state, std::string_view reason,
                          std::string_view extra_key, std::string extra_value) {
  audit::AuditEvent event{"card", {}};
  event.add("result", std::string(result)).add("serial", std::to_string(serial));
  event.add("user", state.user.value_or(state.card_holder.value_or(""))).add("source", state.observed.to_string());
  if (!state.user) event.add("agent", "1");  // placed by this node as a connection agent, no login
  if (!reason.empty()) event.add("reason", std::string(reason));
  if (!extra_key.empty()) event.add(std::string(extra_key), std::move(extra_value));
  audit_->record(event);
}

void NodeCore::refuse_card(LinkId link, const LinkState& state, const proto::Message& request,
                           const CardDecision& decision, uint64_t serial, std::string_view sources) {
  ++counters_.card_calls_refused;
  audit_card("refused", serial, state, decision.reason(), sources.empty() ? "" : "in_use_from", std::string(sources));
  auto refusal = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
  refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
  refusal.add_error(sig::error::card_refused, "Card Refused: " + decision.reason());
  refusal.add_u32(sig::attr::card_refusal, static_cast<uint32_t>(decision.refusal));
  // A revoked card's terminal learns the revocation list here, and refuses
  // the card itself from then on, offline too.
  add_card_update(refusal, request);
  send(link, refusal.finish());
}

std::optional<NodeCore::CardUse> NodeCore::check_card(LinkId link, const LinkState& state,
                                                      const proto::Message& request, std::optional<bool> password_ok,
                                                      Now now, uint64_t* serial_out) {
  const auto* card_attribute = request.find(sig::attr::card);
  const auto* password = request.find(sig::attr::card_password);
  if (card_attribute == nullptr || password == nullptr || card_attribute->value.size() > sig::max_card_attribute ||
      password->value.size() > sig::max_card_password_size) {
    reply_error(link, request, sig::error::bad_request,
                "Bad Request: CARD (at most 8192 bytes) and CARD-PASSWORD (at most 64) go together");
    return std::nullopt;
  }
  auto decoded = cards::decode_card(card_attribute->value, settings_.card_issuers, static_cast<int64_t>(now.unix_s));
  // A card of a key this node has not read yet (issued after a rekey or the
  // first issue since the node started): the keys are read again, not often.
  if (!decoded && decoded.error().code == cards::CardErrc::unknown_key && reload_card_issuers(now))
    decoded = cards::decode_card(card_attribute->value, settings_.card_issuers, static_cast<int64_t>(now.unix_s));
  refresh_card_update(now);  // after the keys were read again: an update of a new key verifies
  uint64_t serial = decoded ? decoded->serial : 0;
  if (serial_out != nullptr) *serial_out = serial;
  std::optional<CardAccount> account;
  if (decoded) {
    auto found = cards().find(serial);
    if (!found) {
      reply_storage_error(link, request, found.error());
      return std::nullopt;
    }
    account = std::move(*found);
  }
  bool for_call = request.method == sig::method::call;
  // card_status asks about the units, so a card with none or in a call is
  // still answered; a call needs both.
  // The forced change is asked only once the password was verified (the
  // second pass): a copy of the card without it learns nothing from it.
  CardDecision decision = admit_card(decoded, account, password_ok.value_or(true),
                                     for_call ? card_call_table_.calls(serial) : 0, settings_.max_calls_per_card,
                                     for_call && password_ok.has_value() && settings_.card_holder_password_required);
  if (!for_call && decision.refusal == CardRefusal::no_units) decision = CardDecision{};
  if (!decision.admitted()) {
    refuse_card(link, state, request, decision, serial,
                decision.refusal == CardRefusal::in_use ? card_call_table_.sources(serial) : "");
    return std::nullopt;
  }
  CardUse use;
  use.serial = serial;
  use.units_left = account->units_left;
  use.password_set_at = account->password_set_at;
  for (const auto& issuer : settings_.card_issuers)
    if (issuer.key_id == decoded->issuer_key_id) use.issuer_key = issuer.public_key;
  use.send_update = card_update_ && update_version_held(request) < card_update_->update.version;
  if (for_call) {
    const auto* route_name = request.find(sig::attr::card_route);
    // The issuer's newest area table replaces the card's (a terminal that
    // has it routes by it); the card's own names stay good too.
    const cards::AccessPoint* route = nullptr;
    cards::RouteKind kind = cards::RouteKind::internet;
    if (route_name != nullptr) {
      std::string_view name = proto::read_string(*route_name);
      route = find_access_point(decoded->areas, name, &kind);
      if (route == nullptr && card_update_) route = find_access_point(card_update_->update.areas, name, &kind);
    }
    if (route == nullptr) {
      reply_error(link, request, sig::error::bad_request,
                  "Bad Request: CARD-ROUTE must name an access point on the card");
      return std::nullopt;
    }
    // A caller with no login: this node places the call as the card's connection agent.
    AgentCallRefusal agent = admit_agent_call(AgentCallRequest{settings_.card_connection_agent, state.user.has_value(),
                                                               kind, state.card_holder_serial, serial});
    if (agent != AgentCallRefusal::none) {
      audit_card("refused", serial, state, agent_call_refusal_name(agent));
      reply_error(link, request,
                  agent == AgentCallRefusal::not_an_agent ? sig::error::unauthenticated : sig::error::bad_request,
                  std::string(agent == AgentCallRefusal::not_an_agent ? "Unauthenticated: " : "Bad Request: ") +
                      agent_call_refusal_name(agent));
      return std::nullopt;
    }
    use.route = *route;
    use.card_id = decoded->card_id;
  }
  return use;
}

// A connection agent takes card calls from links that have not logged in.
bool NodeCore::card_link_may_ask(const LinkState& state, const proto::Message& request) const {
  return state.user || (settings_.card_connection_agent && request.method == sig::method::call);
}

void NodeCore::begin_card_check(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!card_link_may_ask(state, request))
    return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  if (request.method == sig::method::call && request.find(sig::attr::call_id) != nullptr)
    return reply_error(link, request, sig::error::bad_request,
                       "Bad Request: CARD goes with the first call request (USER-ID), not with CALL-ID");
  if (request.method == sig::method::card_password) {
    const auto* chosen = request.find(sig::attr::card_new_password);
    const char* problem = chosen == nullptr ? "missing"
                                            : cards::holder_password_problem(proto::read_string(*chosen),
                                                                             sig::max_card_password_size);
    if (problem != nullptr)
      return reply_error(link, request, sig::error::bad_request,
                         std::string("Bad Request: CARD-NEW-PASSWORD: ") + problem);
  }
  uint64_t serial = 0;
  auto use = check_card(link, state, request, std::nullopt, now, &serial);
  if (!use) return;
  // Guessing a card's password costs a scrypt run each, limited per card
  // and source as logins are.
  std::string card_key = "card:" + std::to_string(serial);
  std::string source = source_key(state.observed);
  if (uint32_t wait = limiter_.retry_after(card_key, source, now.mono_ms); wait > 0) {
    audit_card("limited", serial, state);
    return reply_retry_after(link, request, wait, "Too Many Attempts: too many wrong passwords for this card");
  }
  if (password_work_full(link, request)) return;
  limiter_.record_failure(card_key, source, now.mono_ms);  // refunded when right, as logins are
  // The stored hash, from the entry check_card() just read (in this turn's
  // transaction on LMDB; read again from PostgreSQL in cluster mode).
  auto account = cards().find(serial);
  if (!account) return reply_storage_error(link, request, account.error());
  if (!account->has_value()) return reply_error(link, request, sig::error::unavailable);
  uint64_t job = next_job_id_++;
  PendingCardCheck pending{link, Bytes(current_message_.begin(), current_message_.end()), serial};
  // The route's relays named by host name are looked up while the password
  // is checked; the call waits for them then (card_password_checked).
  if (request.method == sig::method::call && settings_.resolve_relay_names) {
    pending.relay_names = route_relay_names(use->route);
    for (auto& name : relay_names_.want(pending.relay_names, now.mono_ms)) relay_name_lookups_.push_back(std::move(name));
  }
  pending_card_checks_[job] = std::move(pending);
  std::string typed(proto::read_string(*request.find(sig::attr::card_password)));
  password_jobs_.push_back(PasswordJob{PasswordJob::Kind::verify, job, cards::normalized_card_password(typed),
                                       (*account)->password_hash, /*scram_iterations: no migration*/ 0});
}

void NodeCore::handle_card_area(LinkId link, const LinkState& state, const proto::Message& request) {
  if (!state.user) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  const std::string* area = settings_.card_areas.area_of(state.observed);
  if (area == nullptr)
    return reply_error(link, request, sig::error::not_found, "Not Found: no area for " + state.observed.ip_string());
  auto ok = success(request);
  ok.add_string(sig::attr::card_area, *area);
  send(link, ok.finish());
}

bool NodeCore::reload_card_issuers(Now now) {
  if (!settings_.reload_card_issuers ||
      (card_issuers_reloaded_ms_ != 0 &&
       now.mono_ms < card_issuers_reloaded_ms_ + uint64_t{settings_.card_issuer_reload_s} * 1000))
    return false;
  card_issuers_reloaded_ms_ = std::max<uint64_t>(now.mono_ms, 1);
  settings_.card_issuers = settings_.reload_card_issuers();
  return true;
}

void NodeCore::refresh_card_update(Now now) {
  if (!settings_.read_card_update) return;
  Bytes bytes = settings_.read_card_update();
  if (bytes.empty() || bytes == card_update_seen_) return;
  auto update = cards::decode_card_update(bytes, settings_.card_issuers);
  // Signed by a key rekeyed in since the keys were read (a `card rekey`,
  // then `card publish` or `card revoke`, while the node runs): read them
  // again, as for a card of a new key, so old cards' terminals get it too.
  if (!update && update.error().code == cards::CardErrc::unknown_key && reload_card_issuers(now))
    update = cards::decode_card_update(bytes, settings_.card_issuers);
  // One that does not verify is not served. Signed by a key the node has not
  // read yet, it is tried again with the next card (whose unknown key reads
  // the keys again); otherwise not until the file changes. An older one than
  // served never replaces it.
  if (update || update.error().code != cards::CardErrc::unknown_key) card_update_seen_ = bytes;
  if (!update || (card_update_ && update->version <= card_update_->update.version)) return;
  std::vector<Bytes> rollovers;
  if (settings_.read_card_key_rollovers) rollovers = settings_.read_card_key_rollovers();
  card_update_ = ServedCardUpdate{std::move(bytes), std::move(*update), std::move(rollovers)};
}

void NodeCore::add_card_update(proto::MessageBuilder& reply, const proto::Message& request) const {
  if (card_update_ && update_version_held(request) < card_update_->update.version) add_served_update(reply);
}

// The update and, before it, the key rollovers that lead to its signer.
void NodeCore::add_served_update(proto::MessageBuilder& message) const {
  for (const auto& statement : card_update_->key_rollovers) message.add(sig::attr::card_key_rollover, statement);
  message.add(sig::attr::card_update, card_update_->bytes);
}

bool NodeCore::card_password_checked(const PasswordJobResult& result, Now now) {
  auto it = pending_card_checks_.find(result.id);
  if (it == pending_card_checks_.end()) return false;
  const auto& names = it->second.relay_names;
  if (result.verified && !it->second.relay_names_waited &&
      std::any_of(names.begin(), names.end(), [&](const std::string& name) { return relay_names_.in_flight(name); })) {
    if (card_checks_awaiting_names_.emplace(result.id, result).second)
      deadlines_.schedule(now.mono_ms + settings_.relay_name_wait_ms, DeadlineKind::relay_names,
                          std::to_string(result.id));
    return true;
  }
  PendingCardCheck pending = std::move(it->second);
  pending_card_checks_.erase(it);
  auto link = links_.find(pending.link);
  if (link == links_.end()) return true;  // gone meanwhile
  LinkState& state = link->second;
  auto decoded = proto::decode(pending.request);
  if (!decoded) return true;  // it decoded before
  const proto::Message& request = decoded->message;
  if (!card_link_may_ask(state, request)) return true;  // logged out meanwhile
  if (pending.new_password_hash) {
    store_holder_card_password(pending, request, result.hash, now);
    return true;
  }
  if (result.verified) limiter_.record_success("card:" + std::to_string(pending.serial), source_key(state.observed));
  // Again with the password's verdict, and the ledger and the calls as they
  // are now: another call may have taken the card meanwhile.
  current_message_ = pending.request;
  auto use = check_card(pending.link, state, request, result.verified, now);
  current_message_ = {};
  if (!use) return true;
  if (request.method == sig::method::card_password) {
    // The current password was right: hash the new one, off the loop too.
    uint64_t job = next_job_id_++;
    pending.new_password_hash = true;
    pending_card_checks_[job] = std::move(pending);
    std::string chosen(proto::read_string(*request.find(sig::attr::card_new_password)));
    PasswordJob hash{PasswordJob::Kind::hash, job, cards::normalized_card_password(chosen), {}, 0};
    hash.scrypt = settings_.password_hashing;
    password_jobs_.push_back(std::move(hash));
    return true;
  }
  if (request.method == sig::method::card_status) {
    audit_card("status", use->serial, state);
    auto ok = success(request);
    ok.add_u64(sig::attr::card_units, use->units_left);
    if (use->password_set_at > 0) ok.add_u64(sig::attr::card_password_set, static_cast<uint64_t>(use->password_set_at));
    if (settings_.card_holder_password_required) ok.add_u32(sig::attr::card_password_required, 1);
    if (!use->issuer_key.empty()) ok.add(sig::attr::card_issuer_key, use->issuer_key);
    add_card_update(ok, request);
    send(pending.link, ok.finish());
    return true;
  }
  if (!state.user) become_card_holder(pending.link, state, *use);
  ++counters_.card_calls_admitted;
  audit_card("admitted", use->serial, state, {}, "route", use->route.name);
  handle_call(pending.link, state, request, now, &*use);
  return true;
}

// The link's first admitted card call on a connection agent: from now on it
// calls as the card (its caller ID), and it is no longer waiting to log in.
void NodeCore::become_card_holder(LinkId link, LinkState& state, const CardUse& card) {
  if (state.card_holder) return;
  state.card_holder = agent_caller_id(card.card_id);
  state.card_holder_serial = card.serial;
  deadlines_.cancel(DeadlineKind::login, link_key(link));
  end_prelogin(state);
}

void NodeCore::store_holder_card_password(const PendingCardCheck& pending, const proto::Message& request,
                                          const std::string& hash, Now now) {
  auto stored = cards().set_password(pending.serial, hash, static_cast<int64_t>(now.unix_s), "set by the holder");
  if (!stored) return reply_storage_error(pending.link, request, stored.error());
  if (stored->outcome != LedgerOutcome::done)  // revoked (or gone) while the hash was made
    return reply_error(pending.link, request, sig::error::card_refused,
                       std::string("Card Refused: ") + ledger_outcome_name(stored->outcome));
  audit::AuditEvent event{"card", {}};
  const LinkState& state = links_.at(pending.link);
  event.add("result", "password_set").add("serial", std::to_string(pending.serial));
  event.add("user", state.user.value_or("")).add("source", state.observed.to_string());
  audit_after_commit(std::move(event));
  reply_after_commit(pending.link, request, success(request).finish(), "the card password was not changed");
}

void NodeCore::card_call_placed(const Call& call, const CardUse& card) {
  auto state = std::make_unique<CardCallState>();
  state->serial = card.serial;
  state->number = next_card_call_number_++;
  state->caller_link = call.caller_link;
  state->route = card.route;
  state->turn_servers = route_turn_servers(card.route);
  card_call_table_.begin(card.serial, state->number, call.caller_source);
  card_calls_[call.id] = std::move(state);
  send_card_units(call.caller_link, call.id, card.units_left, false, false, card.send_update);
}

void NodeCore::card_call_accepted(const Call& call, Now now) {
  auto it = card_calls_.find(call.id);
  if (it == card_calls_.end()) return;
  CardCallState& state = *it->second;
  state.meter.emplace(state.route, static_cast<int64_t>(now.unix_s), int64_t{settings_.card_debit_interval_s});
  // The first period is paid as it starts: at the next tick, which is due at
  // once. Not here: a card that cannot pay ends the call, and the caller of
  // this hook is still using it.
  deadlines_.schedule(now.mono_ms, DeadlineKind::card_debit, call.id);
}

void NodeCore::debit_card_call(const std::string& call_id, Now now) {
  auto it = card_calls_.find(call_id);
  if (it == card_calls_.end() || !it->second->meter) return;
  CardCallState& state = *it->second;
  uint64_t units = state.meter->due(static_cast<int64_t>(now.unix_s));
  auto schedule_next = [&] {
    // The wall clock counts whole seconds: wake at the period's start on the
    // monotonic clock, a second later if the wall clock has not got there.
    int64_t wait_s = std::max<int64_t>(state.meter->next_minute() - static_cast<int64_t>(now.unix_s), 1);
    deadlines_.schedule(now.mono_ms + static_cast<uint64_t>(wait_s) * 1000, DeadlineKind::card_debit, call_id);
  };
  if (units == 0) return schedule_next();
  std::string note = "call " + call_id.substr(0, 8) + " route " + state.route.name;
  auto debited = cards().debit(state.serial, units, static_cast<int64_t>(now.unix_s), note);
  if (!debited) {
    note_storage_error(debited.error());
    return schedule_next();  // tried again at the next period, with both periods' charge
  }
  ++counters_.card_debits;
  if (debited->outcome != LedgerOutcome::done) {
    // What it had was taken (exhausted), or it had nothing, or was revoked
    // during the call: the period cannot be paid.
    audit::AuditEvent event{"card", {}};
    event.add("result", "exhausted").add("serial", std::to_string(state.serial)).add("call", call_id);
    event.add("reason", ledger_outcome_name(debited->outcome));
    audit_after_commit(std::move(event));
    bool revoked = debited->outcome == LedgerOutcome::revoked;
    end_call(call_id, sig::error::units_exhausted,
             revoked ? "Card Revoked: the card was revoked during the call"
                     : "Units Exhausted: the card has no units left",
             std::nullopt);
    return;
  }
  // The next period's price at its start; a warning when what is left will not pay it.
  uint64_t next_charge = cards::minute_charge(state.route, state.meter->next_minute());
  send_card_units(state.caller_link, call_id, debited->units_left, debited->units_left < next_charge, true);
  schedule_next();
}

void NodeCore::send_card_units(LinkId link, const std::string& call_id, uint64_t units_left, bool warning,
                               bool after_commit, bool with_update) {
  proto::TransactionId id;
  auto event = indication(sig::method::card_units, &id);
  event.add_string(sig::attr::call_id, call_id);
  event.add_u64(sig::attr::card_units, units_left);
  if (warning) event.add_u32(sig::attr::card_warning, 1);
  if (with_update && card_update_) add_served_update(event);
  if (after_commit) reply_after_commit(link, sig::method::card_units, id, event.finish());
  else send(link, event.finish());
}

const std::vector<proto::SocketAddress>* NodeCore::card_turn_servers(const std::string& call_id) const {
  auto it = card_calls_.find(call_id);
  if (it == card_calls_.end() || it->second->turn_servers.empty()) return nullptr;
  return &it->second->turn_servers;
}

void NodeCore::card_call_ended(const std::string& call_id) {
  auto it = card_calls_.find(call_id);
  if (it == card_calls_.end()) return;
  card_call_table_.end(it->second->number);
  deadlines_.cancel(DeadlineKind::card_debit, call_id);
  card_calls_.erase(it);
}

Expected<std::optional<CardAccount>, storage::StoreError> NodeCore::TurnCardLedger::find(uint64_t serial) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  if (!core_.card_ledger_) return Unexpected(core_.open_error_.value_or(storage::StoreError{}));
  return core_.card_ledger_->find(*txn, serial);
}

Expected<LedgerResult, storage::StoreError> NodeCore::TurnCardLedger::debit(uint64_t serial, uint64_t units,
                                                                            int64_t now, std::string_view note) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  if (!core_.card_ledger_) return Unexpected(core_.open_error_.value_or(storage::StoreError{}));
  return core_.card_ledger_->debit(*txn, serial, units, now, note);
}

Expected<LedgerResult, storage::StoreError> NodeCore::TurnCardLedger::set_password(uint64_t serial,
                                                                                   std::string password_hash,
                                                                                   int64_t now, std::string_view note) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  if (!core_.card_ledger_) return Unexpected(core_.open_error_.value_or(storage::StoreError{}));
  return core_.card_ledger_->set_password(*txn, serial, std::move(password_hash), now, note);
}

}  // namespace tsunagu::rendezvous
