#include "rendezvous/node_core.hpp"

#include <algorithm>

#include "proto/profile_change.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {
namespace {

namespace sig = tsunagu::proto;

// Method and transaction ID straight from the header, for answering a message
// that did not decode.
std::optional<std::pair<uint16_t, proto::TransactionId>> header_of(ByteView bytes) {
  if (bytes.size() < proto::header_size) return std::nullopt;
  uint16_t type = load_be16(bytes.data());
  uint16_t method = static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  bool request = (type & 0x0110) == 0;
  if (!request) return std::nullopt;
  proto::TransactionId id;
  std::copy(bytes.begin() + 8, bytes.begin() + 20, id.bytes.begin());
  return std::make_pair(method, id);
}

}  // namespace

NodeCore::NodeCore(AccountStore& store, NodeSettings settings, AccountDirectory* shared_accounts)
    : store_(store),
      accounts_(shared_accounts != nullptr ? *shared_accounts : turn_accounts_),
      cluster_mode_(shared_accounts != nullptr),
      settings_(std::move(settings)),
      presence_(uint64_t{settings_.keepalive_interval_s} * settings_.keepalive_misses * 1000),
      limiter_(settings_.login_limits),
      scan_limiter_(settings_.directory_scan_burst, settings_.directory_scan_interval_ms),
      uploads_(std::make_unique<LocalUploadTable>(uint64_t{settings_.voicemail_upload_idle_s} * 1000,
                                                  uint64_t{settings_.voicemail_upload_max_s} * 1000)) {
  auto registry = AgentRegistry::open(store_.environment());
  if (registry) registry_.emplace(std::move(*registry));
  else open_error_ = registry.error();
  auto voicemail = VoicemailStore::open(store_.environment());
  if (voicemail) voicemail_.emplace(std::move(*voicemail));
  else if (!open_error_) open_error_ = voicemail.error();
  auto card_ledger = CardLedger::open(store_.environment());
  if (card_ledger) card_ledger_.emplace(*card_ledger);
  else if (!open_error_) open_error_ = card_ledger.error();
  // Both at the first tick, as before this queue: their times start at 0.
  if (voicemail_) deadlines_.schedule(0, DeadlineKind::retention_sweep);
  if (settings_.account_check_interval_ms != 0) deadlines_.schedule(0, DeadlineKind::account_check);
  auto epoch = accounts_.epoch();
  read_txn_.reset();
  if (epoch) known_account_epoch_ = *epoch;
  else if (!open_error_) open_error_ = epoch.error();
}

Expected<std::unique_ptr<NodeCore>, storage::StoreError> NodeCore::open(AccountStore& store, NodeSettings settings,
                                                                        AccountDirectory* shared_accounts) {
  auto core = std::make_unique<NodeCore>(store, std::move(settings), shared_accounts);
  if (core->open_error_) return Unexpected(*core->open_error_);
  return core;
}

void NodeCore::agent_link_ready(LinkId link, const std::string& agent_name, Now now) {
  now_ = now;
  auto it = links_.find(link);
  if (it == links_.end()) return;
  it->second.agent_name = agent_name;
}

void NodeCore::link_opened(LinkId link, const proto::SocketAddress& observed, Now now) {
  now_ = now;
  LinkState state;
  state.observed = observed;
  state.opened_ms = now.mono_ms;
  links_[link] = state;
  deadlines_.schedule(now.mono_ms + uint64_t{settings_.login_timeout_s} * 1000, DeadlineKind::login, link_key(link));
  admit_link(link, links_[link], now);
}

void NodeCore::link_closed(LinkId link, Now now) {
  auto it = links_.find(link);
  now_ = now;
  if (it == links_.end()) return;
  deadlines_.cancel(DeadlineKind::login, link_key(link));
  bool agent = it->second.agent_ready;
  if (agent) audit_agent_link("down", link, it->second);
  forget_link_limits(link, it->second);
  set_link_user(it->second, std::nullopt);
  links_.erase(it);
  if (agent) drop_agent_routes(link, now);
  calls_link_closed(link);
  voicemail_link_closed(link);
  if (auto user = presence_.remove_link(link)) presence_ended(*user, now);
  std::erase_if(after_commit_, [&](const PendingReply& r) { return r.link == link; });
}

void NodeCore::presence_ended(const std::string& user, Now now) {
  last_seen_unix_[user] = now.unix_s;
  presence_changed(user);
  cluster_change(ClusterPresenceChange::Kind::ended, false, user, 0);
}

void NodeCore::remote_link_opened(LinkId link, const std::string& user, const proto::SocketAddress& observed, Now now) {
  now_ = now;
  LinkState state;
  state.observed = observed;
  state.opened_ms = now.mono_ms;
  state.role = sig::link_role::query;
  state.last_message_ms = now.mono_ms;
  set_link_user(links_[link] = std::move(state), user);
}

void NodeCore::presence_taken_elsewhere(const std::string& user, Now now) {
  now_ = now;
  auto holder = presence_.logout(user);
  if (!holder) return;
  presence_ended(user, now);  // its Redis row is the other node's now: the compare-delete leaves it
  notice(*holder, sig::notice_code::displaced, "logged in elsewhere");
  close(*holder, "displaced by a newer login on another node");
  if (auto other = links_.find(*holder); other != links_.end()) set_link_user(other->second, std::nullopt);
}

std::optional<std::string> NodeCore::link_user(LinkId link) const {
  auto it = links_.find(link);
  return it == links_.end() ? std::nullopt : it->second.user;
}

bool NodeCore::held_here(const std::string& user_id) const {
  return presence_.find(user_id) != nullptr || rendezvous::find_route(*routes_, nullptr, user_id).agent.has_value();
}

void NodeCore::send(LinkId link, Bytes message) {
  actions_.push_back(NodeAction{NodeAction::Kind::send, link, std::move(message), {}});
}

void NodeCore::close(LinkId link, std::string reason) {
  actions_.push_back(NodeAction{NodeAction::Kind::close, link, {}, std::move(reason)});
}

void NodeCore::notice(LinkId link, uint32_t code, std::string_view reason) {
  auto builder = indication(sig::method::notice);
  builder.add_u32(sig::attr::notice_code, code);
  builder.add_string(sig::attr::notice_reason, reason);
  send(link, builder.finish());
}

proto::MessageBuilder NodeCore::indication(uint16_t method, proto::TransactionId* id) {
  proto::TransactionId fresh;
  fill_random(fresh.bytes);
  if (id != nullptr) *id = fresh;
  proto::MessageBuilder builder(proto::MessageClass::indication, method, fresh);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  return builder;
}

proto::MessageBuilder NodeCore::success(const proto::Message& request) {
  auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::success);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  return builder;
}

void NodeCore::reply_error(LinkId link, uint16_t method, const proto::TransactionId& id, uint16_t code,
                           std::string_view reason) {
  proto::MessageBuilder builder(proto::MessageClass::error, method, id);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  builder.add_error(code, reason.empty() ? sig::error_reason(code) : reason);
  send(link, builder.finish());
}

void NodeCore::reply_error(LinkId link, const proto::Message& request, uint16_t code, std::string_view reason) {
  reply_error(link, request.method, request.transaction_id, code, reason);
}

Bytes NodeCore::storage_error_message(uint16_t method, const proto::TransactionId& id,
                                      const storage::StoreError& error, std::string_view not_done) const {
  // Full storage is the operator's to fix (space, map_size), not a glitch to
  // retry at once: 507 tells the client so. The cause goes to the log only.
  bool full = error.code == storage::StoreErrc::map_full || error.code == storage::StoreErrc::disk_full;
  std::string reason = full ? "Insufficient Storage: the node's storage is full" : "Unavailable: storage error";
  if (!not_done.empty()) reason.append("; ").append(not_done);
  proto::MessageBuilder builder(proto::MessageClass::error, method, id);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  builder.add_error(full ? sig::error::over_quota : sig::error::unavailable, reason);
  return builder.finish();
}

void NodeCore::record_storage_fault(StorageFault fault) {
  if (!turn_error_ && fault.error.code != storage::StoreErrc::poisoned) turn_error_ = fault.error;
  // Bounded: the daemon takes them every turn; a core nobody drains must not grow.
  constexpr size_t max_queued = 64;
  if (storage_faults_.size() < max_queued) storage_faults_.push_back(std::move(fault));
}

void NodeCore::note_storage_error(const storage::StoreError& error) {
  ++counters_.storage_errors[static_cast<size_t>(error.code)];
  record_storage_fault(StorageFault{error, 0, false, 0});
}

void NodeCore::reply_storage_error(LinkId link, uint16_t method, const proto::TransactionId& id,
                                   const storage::StoreError& error) {
  ++counters_.storage_errors[static_cast<size_t>(error.code)];
  record_storage_fault(StorageFault{error, method, false, 0});
  send(link, storage_error_message(method, id, error, {}));
}

void NodeCore::reply_storage_error(LinkId link, const proto::Message& request, const storage::StoreError& error) {
  reply_storage_error(link, request.method, request.transaction_id, error);
}

void NodeCore::reply_after_commit(LinkId link, uint16_t method, const proto::TransactionId& id, Bytes on_commit,
                                  std::string_view not_done) {
  after_commit_.push_back(PendingReply{link, std::move(on_commit), method, id, std::string(not_done)});
}

void NodeCore::reply_after_commit(LinkId link, const proto::Message& request, Bytes on_commit,
                                  std::string_view not_done) {
  reply_after_commit(link, request.method, request.transaction_id, std::move(on_commit), not_done);
}

storage::Transaction* NodeCore::read_txn() {
  if (write_txn_) return &*write_txn_;
  if (!read_txn_) {
    auto txn = store_.begin_read();
    if (!txn) {
      txn_error_ = txn.error();
      return nullptr;
    }
    read_txn_.emplace(std::move(*txn));
  }
  return &*read_txn_;
}

storage::Transaction* NodeCore::write_txn() {
  if (!write_txn_) {
    read_txn_.reset();
    auto txn = store_.begin_write();
    if (!txn) {
      txn_error_ = txn.error();
      return nullptr;
    }
    write_txn_.emplace(std::move(*txn));
  }
  return &*write_txn_;
}

void NodeCore::message(LinkId link, ByteView bytes, Now now) {
  now_ = now;
  auto it = links_.find(link);
  if (it == links_.end()) return;
  LinkState& state = it->second;
  if (state.refused) return;
  state.last_message_ms = now.mono_ms;
  auto decoded = proto::decode(bytes);
  if (!decoded) {
    ++counters_.bad_messages;
    if (auto header = header_of(bytes))
      reply_error(link, header->first, header->second, sig::error::bad_request,
                  std::string("Bad Request: ") + decoded.error().detail);
    if (++state.bad_messages >= settings_.max_bad_messages) close(link, "too many malformed messages");
    return;
  }
  const proto::Message& message = decoded->message;
  if (message.message_class == proto::MessageClass::success || message.message_class == proto::MessageClass::error) {
    if (message.method == sig::method::ring) handle_ring_answer(link, message, now);
    else if (state.agent_ready) handle_agent_response(link, message, now);
    return;
  }
  if (message.message_class == proto::MessageClass::indication) {
    if (message.method == sig::method::call_candidate) handle_call_candidate(link, state, message);
    else if (message.method == sig::method::call_path) handle_call_path(link, state, message);
    return;
  }
  ++counters_.requests;
  current_message_ = bytes.subspan(0, decoded->consumed);
  handle_request(link, state, message, now);
  current_message_ = {};
}

void NodeCore::handle_request(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  const auto* version = request.find(sig::attr::protocol_version);
  if (version == nullptr) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: PROTOCOL-VERSION is required");
    return;
  }
  auto version_value = proto::read_u32(*version);
  if (!version_value) {  // malformed, not another version
    reply_error(link, request, sig::error::bad_request, "Bad Request: PROTOCOL-VERSION is a u32");
    return;
  }
  if (*version_value != sig::protocol_version) {
    reply_error(link, request, sig::error::unsupported_version,
                "Unsupported Version: this node speaks protocol version 1");
    return;
  }
  if (cluster_mode_ && refuse_unshared_feature(link, request)) return;
  if (state.agent_name) {  // agent links speak only the agent methods
    switch (request.method) {
      case sig::method::agent_hello: return handle_agent_hello(link, state, request);
      case sig::method::keepalive:
        if (!state.agent_ready) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: say hello first");
        return send(link, success(request).finish());
      case sig::method::hangup:  // a LAN terminal's hang-up, relayed by its agent
        if (!state.agent_ready) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: say hello first");
        return handle_hangup(link, state, request, now);
      case sig::method::voicemail_list:  // the mailbox of one of its extensions, to deliver to the terminal
      case sig::method::voicemail_fetch:
      case sig::method::voicemail_delete:
        if (!state.agent_ready) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: say hello first");
        return handle_agent_voicemail(link, request, now);
      default: return reply_error(link, request, sig::error::forbidden, "Forbidden: not a method for agent links");
    }
  }
  if (state.user && !session_still_valid(link, state, request, now)) return;
  switch (request.method) {
    case sig::method::agent_hello:
      return reply_error(link, request, sig::error::forbidden,
                         "Forbidden: agents connect to the agent port with their enrolment certificate");
    case sig::method::register_user: return handle_register(link, state, request, now);
    case sig::method::login_begin: return handle_login_begin(link, state, request, now);
    case sig::method::login: return handle_login(link, state, request, now);
    case sig::method::login_resume: return handle_token_login(link, state, request, now);
    case sig::method::keepalive: return handle_keepalive(link, state, request, now);
    case sig::method::logout: return handle_logout(link, state, request, now);
    case sig::method::lookup: return handle_lookup(link, state, request, now);
    case sig::method::turn_credentials: return handle_turn_credentials(link, state, request, now);
    case sig::method::call: return handle_call(link, state, request, now);
    case sig::method::card_status: return begin_card_check(link, state, request, now);
    case sig::method::card_password: return begin_card_check(link, state, request, now);
    case sig::method::card_area: return handle_card_area(link, state, request);
    case sig::method::hangup: return handle_hangup(link, state, request, now);
    case sig::method::voicemail_begin:
    case sig::method::voicemail_chunk:
    case sig::method::voicemail_finish:
    case sig::method::voicemail_list:
    case sig::method::voicemail_fetch:
    case sig::method::voicemail_delete: return handle_voicemail(link, state, request, now);
    case sig::method::directory_search: return handle_directory_search(link, state, request, now);
    case sig::method::directory_categories: return handle_directory_categories(link, state, request, now);
    case sig::method::profile_get:
    case sig::method::profile_set: return handle_profile(link, state, request);
    default:
      ++counters_.bad_messages;
      reply_error(link, request, sig::error::bad_request, "Bad Request: unknown method");
  }
}

bool NodeCore::refuse_unshared_feature(LinkId link, const proto::Message& request) {
  // Each names its feature: what the operator reads in the client's error.
  std::string_view feature;
  switch (request.method) {
    case sig::method::agent_hello:
      if (shared_agents_ != nullptr) return false;
      feature = "LAN agents";
      break;
    case sig::method::card_status:
    case sig::method::card_password:
    case sig::method::card_area:
      if (shared_cards_ != nullptr) return false;
      feature = "access cards";
      break;
    case sig::method::call:
      if (request.find(sig::attr::card) == nullptr || shared_cards_ != nullptr) return false;
      feature = "calls on access cards";
      break;
    case sig::method::voicemail_begin:
    case sig::method::voicemail_chunk:
    case sig::method::voicemail_finish:
    case sig::method::voicemail_list:
    case sig::method::voicemail_fetch:
    case sig::method::voicemail_delete:
      if (shared_voicemail_ != nullptr) return false;
      feature = "voicemail";
      break;
    default: return false;
  }
  reply_error(link, request, sig::error::not_implemented,
              "Not Implemented: " + std::string(feature) +
                  " not yet in cluster mode (this node keeps its accounts in PostgreSQL; docs/cluster.md)");
  return true;
}

std::optional<NodeCore::Credentials> NodeCore::read_credentials(LinkId link, const proto::Message& request,
                                                               size_t min_password) {
  const auto* user = request.find(sig::attr::user_id);
  const auto* password = request.find(sig::attr::password);
  // A register may send SCRAM credentials the client derived instead of the password.
  const auto* derived =
      request.method == sig::method::register_user ? request.find(sig::attr::scram_credentials) : nullptr;
  if (user == nullptr || (password == nullptr && derived == nullptr)) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID and PASSWORD are required");
    return std::nullopt;
  }
  Credentials credentials{std::string(proto::read_string(*user)), password ? proto::read_string(*password) : "",
                          derived ? proto::read_string(*derived) : ""};
  if (!sig::valid_user_id(credentials.user_id)) {
    reply_error(link, request, sig::error::invalid_user_id);
    return std::nullopt;
  }
  if (password != nullptr &&
      (credentials.password.size() < min_password || credentials.password.size() > sig::max_password_size)) {
    reply_error(link, request, sig::error::bad_request,
                min_password == 0 ? "Bad Request: password too long" : "Bad Request: password must be 8 to 256 bytes");
    return std::nullopt;
  }
  return credentials;
}

void NodeCore::handle_register(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!settings_.open_registration) {
    reply_error(link, request, sig::error::forbidden, "Forbidden: registration is closed on this node");
    return;
  }
  auto credentials = read_credentials(link, request, sig::min_password_size);
  if (credentials && sig::card_holder_id(credentials->user_id)) {
    reply_error(link, request, sig::error::invalid_user_id,
                "Invalid User ID: " + std::string(sig::card_holder_id_reason));
    return;
  }
  if (!credentials || refuse_agent_id(link, request, credentials->user_id) ||
      refuse_removed_id(link, request, credentials->user_id, now))
    return;
  std::string source = source_key(state.observed);
  if (uint32_t wait = limiter_.register_retry_after(source, now.mono_ms); wait > 0) {
    ++counters_.registrations_rate_limited;
    audit_->record(audit::AuditEvent{
        "register", {{"result", "limited"}, {"user", credentials->user_id}, {"source", state.observed.to_string()}}});
    reply_retry_after(link, request, wait, "Too Many Attempts: too many registrations from your address");
    return;
  }
  const std::string& user_id = credentials->user_id;
  std::string_view secret = credentials->password;
  std::string display_name;
  if (const auto* name = request.find(sig::attr::display_name)) display_name = proto::read_string(*name);
  if (!proto::valid_profile_text(display_name, sig::max_display_name_size)) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: display name too long or not text");
    return;
  }
  auto existing = accounts_.find(user_id);
  if (!existing) {
    reply_storage_error(link, request, existing.error());
    return;
  }
  if (existing->has_value()) {
    reply_error(link, request, sig::error::user_exists);
    return;
  }
  if (!credentials->scram_credentials.empty())
    return register_with_credentials(link, request, user_id, display_name, credentials->scram_credentials, now);
  if (password_work_full(link, request)) return;
  limiter_.record_registration(source, now.mono_ms);
  uint64_t job = next_job_id_++;
  pending_auth_[job] = PendingAuth::registration(link, request, user_id, std::move(display_name));
  password_jobs_.push_back(PasswordJob{PasswordJob::Kind::hash, job, std::string(secret), {}, settings_.scram_iterations});
}

void NodeCore::handle_login(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (state.login_pending) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: a login is already in progress on this link");
    return;
  }
  if (request.find(sig::attr::scram_client_final) != nullptr) return handle_scram_login(link, state, request, now);
  // A password login: what terminals did before SCRAM, kept so that scrypt
  // accounts migrate (docs/security.md, "Logins").
  auto credentials = read_credentials(link, request, 0);
  if (!credentials || refuse_agent_id(link, request, credentials->user_id)) return;
  const std::string& user_id = credentials->user_id;
  std::string_view secret = credentials->password;
  std::string source = source_key(state.observed);
  if (login_limited(link, state, request, user_id, now)) return;
  PendingAuth pending;
  pending.link = link;
  pending.transaction = request.transaction_id;
  pending.user_id = user_id;
  if (!read_login_details(link, request, pending)) return;
  auto account = find_account(link, request, user_id);
  if (!account) return;
  pending.account_exists = account->has_value();
  if (pending.account_exists) pending.generation = (*account)->generation;
  if (password_work_full(link, request)) return;
  // The terminal's fallback after a failed SCRAM proof for this ID on this
  // link: that proof was charged already, and if this password is the one
  // behind it (checked in the job) it is the same attempt, not a second one.
  std::optional<PasswordJob::FailedProof> after_failed_proof;
  if (state.failed_proof && state.failed_proof->first == user_id) after_failed_proof = std::move(state.failed_proof->second);
  state.failed_proof.reset();
  // Charged now and refunded on success, so attempts still being checked in
  // parallel count against the limit too; a fallback is charged when its
  // password turns out to be another one (password_job_done).
  if (!after_failed_proof) limiter_.record_failure(user_id, source, now.mono_ms);
  pending.charge_if_new_password = after_failed_proof.has_value();
  // An unknown ID costs the same PBKDF2 as a migrated account, so timing tells nothing.
  std::string stored = pending.account_exists ? (*account)->password_hash
                                              : security::scram::encode_credentials(dummy_credentials(user_id));
  pending.stored_hash = stored;
  uint64_t job = next_job_id_++;
  pending_auth_[job] = std::move(pending);
  state.login_pending = true;
  password_jobs_.push_back(PasswordJob{PasswordJob::Kind::verify, job, std::string(secret), std::move(stored),
                                       settings_.scram_iterations, std::move(after_failed_proof)});
}

void NodeCore::password_job_done(const PasswordJobResult& result, Now now) {
  now_ = now;
  if (card_password_checked(result, now)) return;
  auto it = pending_auth_.find(result.id);
  if (it == pending_auth_.end()) return;
  PendingAuth pending = std::move(it->second);
  pending_auth_.erase(it);
  if (!links_.contains(pending.link)) return;  // the link went away meanwhile
  if (pending.purpose == PendingAuth::Purpose::login) {
    bool logged_in = result.verified && pending.account_exists;
    if (pending.charge_if_new_password && !logged_in && !result.same_as_failed_proof)
      limiter_.record_failure(pending.user_id, source_key(links_.at(pending.link).observed), now.mono_ms);
    if (logged_in && !result.hash.empty()) migrate_password(pending, result.hash);
    finish_login(pending, result.verified, now);
  } else {
    finish_register(pending, result.hash, now);
  }
}

void NodeCore::finish_register(const PendingAuth& pending, const std::string& hash, Now now) {
  Account account;
  account.user_id = pending.user_id;
  account.password_hash = hash;
  account.display_name = pending.display_name;
  account.created_at = now.unix_s;
  auto created = accounts_.create(account);
  if (!created) {
    reply_storage_error(pending.link, sig::method::register_user, pending.transaction, created.error());
    return;
  }
  if (!*created) {
    reply_error(pending.link, sig::method::register_user, pending.transaction, sig::error::user_exists);
    return;
  }
  ++counters_.registrations;
  audit_after_commit(audit::AuditEvent{
      "register",
      {{"result", "ok"},
       {"user", pending.user_id},
       {"source", links_.at(pending.link).observed.to_string()},
       {"credentials", pending.client_credentials ? "client" : "node"}}});
  proto::MessageBuilder ok(proto::MessageClass::success, sig::method::register_user, pending.transaction);
  ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
  ok.add_string(sig::attr::user_id, pending.user_id);
  reply_after_commit(pending.link, sig::method::register_user, pending.transaction, ok.finish(),
                     "the account was not created");
}

void NodeCore::finish_login(const PendingAuth& pending, bool verified, Now now) {
  LinkState& state = links_.at(pending.link);
  state.login_pending = false;
  const uint16_t method = pending.method.empty() ? sig::method::login : sig::method::login_resume;
  if (!verified || !pending.account_exists) {
    ++counters_.failed_logins;  // already charged when the attempt began
    audit_login("failed", pending.user_id, state.observed);
    // The same answer for an unknown user and a wrong password: IDs cannot be probed.
    reply_error(pending.link, method, pending.transaction, sig::error::unauthenticated,
                "Unauthenticated: wrong user ID or password");
    return;
  }
  // A password or SCRAM login was charged when it began and is refunded now.
  // A token login was never charged, so it refunds nothing: otherwise token
  // logins from one source would pay back the failed guesses made from it.
  if (pending.method.empty()) limiter_.record_success(pending.user_id, source_key(state.observed));
  if (account_links_full(pending.link, pending.user_id, method, pending.transaction)) {
    audit_login("refused", pending.user_id, state.observed, {}, pending.method);
    return;
  }
  ++counters_.logins;
  // Logging in again as someone else, or as a query link, ends the presence
  // this link held: otherwise it would linger, no longer refreshed by the
  // link's keepalives, until it expired.
  if (state.user && (*state.user != pending.user_id || pending.role != sig::link_role::presence)) {
    if (auto previous = presence_.remove_link(pending.link)) presence_ended(*previous, now);
  }
  bool first_login_on_link = !state.user.has_value();
  set_link_user(state, pending.user_id);
  state.role = pending.role;
  state.account_generation = pending.generation;
  if (first_login_on_link) deadlines_.cancel(DeadlineKind::login, link_key(pending.link));
  end_prelogin(state);

  proto::MessageBuilder ok(proto::MessageClass::success, method, pending.transaction);
  ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
  ok.add_xor_address(proto::attr::xor_mapped_address, state.observed);
  ok.add_u32(sig::attr::keepalive_interval, settings_.keepalive_interval_s);
  if (!pending.server_final.empty()) ok.add_string(sig::attr::scram_server_final, pending.server_final);
  add_resume_token(ok, pending.user_id, pending.generation, now);
  if (!pending.method.empty()) ++counters_.token_logins;

  if (pending.role == sig::link_role::presence) {
    if (auto displaced = presence_.login(pending.user_id, pending.link, pending.reported, state.observed, now.mono_ms)) {
      notice(*displaced, sig::notice_code::displaced, "logged in elsewhere");
      close(*displaced, "displaced by a newer login");
      if (auto other = links_.find(*displaced); other != links_.end()) set_link_user(other->second, std::nullopt);
    }
    if (!last_seen_unix_.empty()) last_seen_unix_.erase(pending.user_id);  // no hashing while no presence has ended
    presence_changed(pending.user_id);
    cluster_change(ClusterPresenceChange::Kind::linked, false, pending.user_id, pending.link);
    // The login is remembered durably (last seen, last addresses) before it is acknowledged.
    LoginRecord record{now.unix_s, pending.reported, state.observed};
    auto recorded = accounts_.record_login(pending.user_id, record);
    if (!recorded) {
      reply_storage_error(pending.link, method, pending.transaction, recorded.error());
      return;
    }
    reply_after_commit(pending.link, method, pending.transaction, ok.finish());
    if (audit_->enabled()) {
      audit::AuditEvent event{
          "login", {{"result", "ok"}, {"user", pending.user_id}, {"source", state.observed.to_string()}, {"role", "presence"}}};
      if (!pending.method.empty()) event.add("method", std::string(pending.method));
      audit_after_commit(std::move(event));
    }
  } else {
    send(pending.link, ok.finish());
    audit_login("ok", pending.user_id, state.observed, "query", pending.method);
  }
}

void NodeCore::handle_keepalive(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.user) {
    reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
    return;
  }
  if (state.role == sig::link_role::presence && !presence_.keepalive(link, now.mono_ms)) {
    // Presence ended (expired or logged out elsewhere): the terminal must log in again.
    set_link_user(state, std::nullopt);
    reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: presence expired, log in again");
    return;
  }
  if (state.role == sig::link_role::presence) cluster_change(ClusterPresenceChange::Kind::refreshed, false, *state.user, link);
  send(link, success(request).finish());
}

void NodeCore::handle_logout(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.user) {  // idempotent: nothing to end
    send(link, success(request).finish());
    return;
  }
  std::string user = *state.user;
  if (auto holder = presence_.logout(user)) {
    presence_ended(user, now);
    if (*holder != link) {
      notice(*holder, sig::notice_code::logged_out, "logged out");
      close(*holder, "logged out from another link");
      if (auto other = links_.find(*holder); other != links_.end()) set_link_user(other->second, std::nullopt);
    }
  }
  set_link_user(state, std::nullopt);
  send(link, success(request).finish());
}

void NodeCore::handle_lookup(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  (void)now;
  if (!state.user) {
    reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
    return;
  }
  const auto* target = request.find(sig::attr::user_id);
  if (target == nullptr) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID is required");
    return;
  }
  std::string user_id(proto::read_string(*target));
  if (!sig::valid_user_id(user_id)) {
    reply_error(link, request, sig::error::invalid_user_id);
    return;
  }
  ++counters_.lookups;
  if (route_lookup(link, state, request, user_id, now)) return;
  auto count = [this](LookupResult result) { ++counters_.direct_lookups[static_cast<size_t>(result)]; };
  auto account = accounts_.find(user_id);
  if (!account) {
    count(LookupResult::error);
    reply_storage_error(link, request, account.error());
    return;
  }
  if (!account->has_value() || !visible_to(**account, *state.user)) {
    count(LookupResult::not_found);
    reply_error(link, request, sig::error::unknown_user);  // the same bytes for hidden and unknown IDs
    return;
  }
  const Account& found = **account;
  auto builder = success(request);
  builder.add_string(sig::attr::user_id, user_id);
  builder.add_string(sig::attr::display_name, found.display_name);
  builder.add_u32(sig::attr::services, found.services);
  if (found.static_address) builder.add_xor_address(sig::attr::static_address, *found.static_address);
  if (const PresenceRow* row = presence_.find(user_id)) {
    uint32_t flags = sig::presence_flag::online | (row->in_call ? sig::presence_flag::in_call : 0) |
                     voicemail_waiting_flag(user_id);
    bool shown = found.addresses_shown || user_id == *state.user;
    builder.add_u32(sig::attr::presence, flags | (shown ? 0 : sig::presence_flag::addresses_hidden));
    if (shown)
      for (const auto& reported : row->reported) builder.add_xor_address(sig::attr::reported_address, reported);
    builder.add_xor_address(sig::attr::observed_address, row->observed);
    builder.add_u64(sig::attr::last_seen, now.unix_s - (now.mono_ms - row->last_seen_ms) / 1000);
    count(LookupResult::found);
    send(link, builder.finish());
    return;
  }
  // Not online here: the answer says when the user was last seen, from this
  // node's record of a logout or else the last login. The reply waits for
  // that read rather than the loop (cluster mode reads it off the loop:
  // AccountDirectory::last_login_then), so it is built from copies.
  proto::Message header = request;
  header.attributes.clear();  // views into the request's bytes, gone by then
  auto answer = [this, link, header, user_id, builder = std::move(builder), count, display_name = found.display_name,
                 services = found.services, static_address = found.static_address.has_value()](
                    uint64_t last_seen) mutable {
    if (static_address) {
      count(LookupResult::found);
      if (!links_.contains(link)) return;  // closed while the last login was read
      builder.add_u32(sig::attr::presence, sig::presence_flag::static_address | voicemail_waiting_flag(user_id));
      builder.add_u64(sig::attr::last_seen, last_seen);
      send(link, builder.finish());
      return;
    }
    count(LookupResult::offline);
    if (!links_.contains(link)) return;
    auto offline = proto::MessageBuilder::response_to(header, proto::MessageClass::error);
    offline.add_u32(sig::attr::protocol_version, sig::protocol_version);
    offline.add_error(sig::error::offline, "Offline: the user is not logged in");
    offline.add_u64(sig::attr::last_seen, last_seen);
    // What a success would have said about the (visible) account, so a client
    // can show an offline user's name and offer voicemail without asking again.
    offline.add_string(sig::attr::display_name, display_name);
    offline.add_u32(sig::attr::services, services);
    send(link, offline.finish());
  };
  if (auto seen = last_seen_unix_.find(user_id); seen != last_seen_unix_.end()) return answer(seen->second);
  // A failed read answers "never seen" (0), as the reply always has.
  accounts_.last_login_then(user_id, [answer = std::move(answer)](auto record) mutable {
    answer(record && record->has_value() ? (*record)->time : 0);
  });
}

std::vector<std::string> NodeCore::linked_agents() const {
  std::vector<std::string> names;
  for (const auto& [link, state] : links_)
    if (state.agent_ready && state.agent_name) names.push_back(*state.agent_name);
  std::sort(names.begin(), names.end());
  return names;
}

void NodeCore::announce_shutdown() {
  for (const auto& [link, state] : links_)
    if (!state.agent_name) notice(link, sig::notice_code::shutting_down, "node shutting down");
}

void NodeCore::tick(Now now) {
  now_ = now;
  for (const auto& row : presence_.expire(now.mono_ms)) {
    presence_ended(row.user_id, now);
    notice(row.link, sig::notice_code::presence_expired, "keepalive missed: presence expired");
    close(row.link, "keepalives missed");
    if (auto it = links_.find(row.link); it != links_.end()) set_link_user(it->second, std::nullopt);
  }
  std::vector<Deadline> due = deadlines_.take_due(now.mono_ms);
  // By kind in DeadlineKind's order (as the separate sets were handled before
  // the one queue), each kind earliest first; the uploads are swept every tick.
  auto each_due = [&](DeadlineKind kind, auto&& handle) {
    for (const auto& deadline : due)
      if (deadline.kind == kind) handle(deadline);
  };
  each_due(DeadlineKind::ring, [&](const Deadline& d) { ring_expired(d.key); });
  expire_uploads(now);
  each_due(DeadlineKind::retention_sweep, [&](const Deadline&) { sweep_voicemail(now); });
  each_due(DeadlineKind::account_check, [&](const Deadline&) { check_accounts(now); });
  each_due(DeadlineKind::idle_check, [&](const Deadline& d) { check_idle(link_of_key(d.key), now); });
  each_due(DeadlineKind::forward, [&](const Deadline&) { expire_forwards(now); });
  each_due(DeadlineKind::card_debit, [&](const Deadline& d) { debit_card_call(d.key, now); });
  each_due(DeadlineKind::relay_names, [&](const Deadline& d) { resume_card_check(std::stoull(d.key), now); });
  each_due(DeadlineKind::login, [&](const Deadline& d) { close(link_of_key(d.key), "no login in time"); });
}

std::optional<uint64_t> NodeCore::next_deadline() const {
  // The account check matters only while links exist, the upload sweep only
  // while uploads do. The retention sweep never wakes the node on its own: it
  // runs at the first tick after it is due (an idle node with no deadline
  // sleeps; messages past retention are not listed meanwhile, only their
  // bytes stay a little longer).
  auto wakes = [this](DeadlineKind kind) {
    switch (kind) {
      case DeadlineKind::account_check: return !links_.empty();
      case DeadlineKind::upload_sweep: return !uploads_->empty();
      case DeadlineKind::retention_sweep: return false;
      default: return true;
    }
  };
  std::optional<uint64_t> next = presence_.next_deadline();
  if (auto queued = deadlines_.next(wakes)) next = next ? std::min(*next, *queued) : *queued;
  return next;
}

void NodeCore::handle_agent_hello(LinkId link, LinkState& state, const proto::Message& request) {
  const std::string& name = *state.agent_name;
  storage::Transaction* txn = nullptr;
  if (shared_agents_ == nullptr) {
    if (!registry_) {
      reply_storage_error(link, request, *open_error_);
      return;
    }
    txn = read_txn();
    if (txn == nullptr) {
      reply_storage_error(link, request, txn_error_);
      return;
    }
  }
  auto domain_owner = [&](const std::string& domain) {
    return shared_agents_ != nullptr ? shared_agents_->domain_owner(domain) : registry_->domain_owner(*txn, domain);
  };
  auto prefix_owner = [&](const std::string& prefix) {
    return shared_agents_ != nullptr ? shared_agents_->prefix_owner(prefix) : registry_->prefix_owner(*txn, prefix);
  };
  std::vector<std::string> domains, prefixes;
  for (const auto* a : request.find_all(sig::attr::domain)) domains.emplace_back(proto::read_string(*a));
  for (const auto* a : request.find_all(sig::attr::number_prefix)) prefixes.emplace_back(proto::read_string(*a));
  if (domains.empty() && prefixes.empty()) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: claim at least one DOMAIN or NUMBER-PREFIX");
    return;
  }
  for (const auto& d : domains) {
    auto owner = domain_owner(d);
    if (!owner) return reply_storage_error(link, request, owner.error());
    if (!owner->has_value() || **owner != name)
      return reply_error(link, request, sig::error::forbidden,
                         "Forbidden: domain " + d + " is not enrolled for agent " + name);
    if (auto held = routes_->domain_holder(d); held && *held != link)
      return reply_error(link, request, sig::error::domain_held,
                         "Domain Held: another connected agent holds domain " + d);
  }
  for (const auto& p : prefixes) {
    auto owner = prefix_owner(p);
    if (!owner) return reply_storage_error(link, request, owner.error());
    if (!owner->has_value() || **owner != name)
      return reply_error(link, request, sig::error::forbidden,
                         "Forbidden: number prefix " + p + " is not enrolled for agent " + name);
    if (auto held = routes_->prefix_holder(p); held && *held != link)
      return reply_error(link, request, sig::error::domain_held,
                         "Domain Held: another connected agent holds prefix " + p);
  }
  routes_->hold(domains, prefixes, link);
  for (const auto& d : domains) cluster_change(ClusterPresenceChange::Kind::linked, true, d, link);
  for (const auto& p : prefixes) cluster_change(ClusterPresenceChange::Kind::linked, true, p, link, true);
  if (!state.agent_ready) {
    deadlines_.cancel(DeadlineKind::login, link_key(link));
    audit_agent_link("up", link, state);
  }
  state.agent_ready = true;
  end_prelogin(state);
  auto ok = success(request);
  ok.add_string(sig::attr::agent_name, name);
  send(link, ok.finish());
}

Expected<std::optional<std::string>, storage::StoreError> NodeCore::RegistryRoutes::route_of(
    const std::string& user_id) {
  if (core_.shared_agents_ != nullptr) return core_.shared_agents_->route_of(user_id);
  if (!core_.registry_) return std::optional<std::string>();
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.registry_->route_of(*txn, user_id);
}

Route NodeCore::find_route(const std::string& user_id) { return rendezvous::find_route(*routes_, &enrolled_routes_, user_id); }

bool NodeCore::route_lookup(LinkId link, LinkState& state, const proto::Message& request, const std::string& user_id,
                            Now now) {
  Route found = find_route(user_id);
  if (found.storage_error) {
    reply_storage_error(link, request, *found.storage_error);
    return true;
  }
  if (!found.routed) return false;
  if (!found.agent) {
    ++counters_.forwarded_lookup_results[static_cast<size_t>(LookupResult::agent_offline)];
    reply_error(link, request, sig::error::agent_offline,
                "Agent Offline: the LAN agent for " + found.route + " is not connected");
    return true;
  }
  if (!send_forward(link, request, *found.agent, user_id, *state.user, now))
    ++counters_.forwarded_lookup_results[static_cast<size_t>(LookupResult::unavailable)];
  return true;
}

bool NodeCore::send_forward(LinkId link, const proto::Message& request, LinkId agent, const std::string& user_id,
                            const std::string& caller_id, Now now, Bytes held) {
  if (!links_.contains(agent) || forwards_->pending_for(agent) >= settings_.max_forwards_per_agent) {
    reply_error(link, request, sig::error::unavailable, "Unavailable: the LAN agent is overloaded");
    return false;
  }
  proto::TransactionId id = next_forward_transaction();
  proto::MessageBuilder forward(proto::MessageClass::request, sig::method::forwarded_lookup, id);
  forward.add_u32(sig::attr::protocol_version, sig::protocol_version);
  forward.add_string(sig::attr::user_id, user_id);
  forward.add_string(sig::attr::caller_id, caller_id);
  forwards_->add(id, PendingForward{link, request.transaction_id, agent, request.method, std::move(held)});
  forward_expiry_queued(id, now.mono_ms + settings_.forward_timeout_ms);
  ++counters_.forwarded_lookups;
  send(agent, forward.finish());
  return true;
}

// A forward's timeout: one queue in sending order (every forward waits the
// same forward_timeout_ms) under one deadline, instead of a DeadlineQueue
// entry inserted and erased per forwarded lookup. An answered forward's
// entry stays until it reaches the front; entries at the front whose
// forward is gone are dropped as new ones come, so the queue holds about
// what is pending. (After a reload shortens the timeout, a new entry may
// wait behind an older, later one: at most the old timeout.)
void NodeCore::forward_expiry_queued(const proto::TransactionId& id, uint64_t when_ms) {
  while (!forward_expiries_.empty() && forwards_->find(forward_expiries_.front().second) == nullptr)
    forward_expiries_.pop_front();
  forward_expiries_.emplace_back(when_ms, id);
  if (forward_expiries_.size() == 1) deadlines_.schedule(when_ms, DeadlineKind::forward);
}

void NodeCore::expire_forwards(Now now) {
  while (!forward_expiries_.empty()) {
    auto [when_ms, id] = forward_expiries_.front();
    bool pending = forwards_->find(id) != nullptr;
    if (pending && when_ms > now.mono_ms) break;
    forward_expiries_.pop_front();
    if (!pending) continue;
    if (auto taken = forwards_->take(id)) {
      ++counters_.forward_timeouts;
      answer_forward(*taken, sig::error::agent_timeout, "Agent Timeout: the LAN agent did not answer in time");
    }
  }
  if (!forward_expiries_.empty()) deadlines_.schedule(forward_expiries_.front().first, DeadlineKind::forward);
}

proto::TransactionId NodeCore::next_forward_transaction() {
  // Unique is all the ID must be: an agent's answer counts only on the link
  // it was sent to (handle_agent_response), so no RAND_bytes per lookup.
  while (forward_id_prefix_ == 0) {
    std::array<std::byte, 4> random;
    fill_random(random);
    forward_id_prefix_ = load_be32(random.data());
  }
  proto::TransactionId id;
  store_be32(id.bytes.data(), forward_id_prefix_);
  store_be64(id.bytes.data() + 4, ++forward_counter_);
  return id;
}

void NodeCore::answer_forward(const PendingForward& forward, uint16_t code, std::string_view reason) {
  if (forward.method == sig::method::lookup)
    ++counters_.forwarded_lookup_results[static_cast<size_t>(lookup_result_of(code))];
  if (!links_.contains(forward.caller)) return;
  reply_error(forward.caller, forward.method, forward.caller_transaction, code, reason);
}

void NodeCore::handle_agent_response(LinkId link, const proto::Message& response, Now now) {
  const PendingForward* pending = forwards_->find(response.transaction_id);
  if (pending == nullptr || pending->agent != link) return;  // late (timed out) or not ours
  PendingForward forward = std::move(*forwards_->take(response.transaction_id));
  if (!links_.contains(forward.caller)) return;
  if (forward.method == sig::method::voicemail_begin) return edge_policy_answered(forward, response, now);
  if (response.message_class == proto::MessageClass::error) {
    const auto* code = response.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    if (!parsed) {
      answer_forward(forward, sig::error::server_error, "Server Error: malformed answer from the LAN agent");
      return;
    }
    answer_forward(forward, parsed->code, parsed->reason);
    return;
  }
  proto::MessageBuilder ok(proto::MessageClass::success, sig::method::lookup, forward.caller_transaction);
  ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
  if (const auto* user = response.find(sig::attr::user_id)) ok.add_string(sig::attr::user_id, proto::read_string(*user));
  ok.add_string(sig::attr::display_name, "");
  ok.add_u32(sig::attr::services, 0);
  ok.add_u32(sig::attr::presence, sig::presence_flag::online);
  size_t addresses = 0;
  for (const auto* a : response.find_all(sig::attr::lease_address)) {
    auto address = proto::read_xor_address(*a, response);
    if (!address || ++addresses > 8) continue;
    ok.add_xor_address(sig::attr::lease_address, *address);
  }
  if (const auto* expires = response.find(sig::attr::lease_expires))
    if (auto value = proto::read_u64(*expires)) ok.add_u64(sig::attr::lease_expires, *value);
  if (const auto* name = links_.at(link).agent_name ? &*links_.at(link).agent_name : nullptr)
    ok.add_string(sig::attr::agent_name, *name);
  ok.add_u64(sig::attr::last_seen, now.unix_s);
  ++counters_.forwarded_lookup_results[static_cast<size_t>(LookupResult::found)];
  send(forward.caller, ok.finish());
}

void NodeCore::drop_agent_routes(LinkId link, Now) {
  routes_->drop_agent(link);
  for (const auto& [id, forward] : forwards_->take_agent(link)) {
    answer_forward(forward, sig::error::agent_offline, "Agent Offline: the LAN agent's link closed");
  }
}

void NodeCore::commit_turn() {
  read_txn_.reset();
  if (!write_txn_) {
    turn_error_.reset();
    release_after_commit();
    return;
  }
  auto committed = write_txn_->commit();
  write_txn_.reset();
  ++counters_.commits;
  std::optional<storage::StoreError> cause = turn_error_;
  turn_error_.reset();
  if (committed) {
    release_after_commit();
    return;
  }
  // A poisoned transaction fails its commit with `poisoned`: the failure
  // that poisoned it is the cause worth answering and logging.
  storage::StoreError error = committed.error();
  if (error.code == storage::StoreErrc::poisoned && cause) error = *cause;
  ++counters_.commit_failures;
  ++counters_.commit_failures_by_kind[static_cast<size_t>(error.code)];
  record_storage_fault(StorageFault{error, 0, true, after_commit_.size()});
  for (auto& reply : after_commit_)
    send(reply.link, storage_error_message(reply.method, reply.transaction, error, reply.not_done));
  after_commit_.clear();
  release_audit(false);
  // Writes the shared directory already holds for this turn: their own
  // commit decides nothing now (every reply is answered), but it must not
  // carry them into the next turn's replies.
  if (accounts_.writes_pending()) accounts_.commit_turn([](std::optional<storage::StoreError>) {});
}

void NodeCore::release_after_commit() {
  if (!accounts_.writes_pending()) {
    for (auto& reply : after_commit_) send(reply.link, std::move(reply.on_commit));
    after_commit_.clear();
    release_audit(true);
    return;
  }
  // Cluster mode: the turn's account writes commit in PostgreSQL later (one
  // transaction, cluster/pg/pg_turn.hpp); the replies wait for it.
  auto replies = std::make_shared<std::vector<PendingReply>>(std::exchange(after_commit_, {}));
  auto events = std::make_shared<std::vector<audit::AuditEvent>>(std::exchange(audit_after_commit_, {}));
  accounts_.commit_turn([this, replies, events](std::optional<storage::StoreError> error) {
    ++counters_.commits;
    if (error) {
      ++counters_.commit_failures;
      ++counters_.commit_failures_by_kind[static_cast<size_t>(error->code)];
      record_storage_fault(StorageFault{*error, 0, true, replies->size()});
    }
    for (auto& reply : *replies) {
      if (!links_.contains(reply.link)) continue;  // closed meanwhile
      if (error) send(reply.link, storage_error_message(reply.method, reply.transaction, *error, reply.not_done));
      else send(reply.link, std::move(reply.on_commit));
    }
    audit_after_commit_ = std::move(*events);
    release_audit(!error);
  });
}

Expected<std::optional<Account>, storage::StoreError> NodeCore::TurnAccounts::find(std::string_view user_id) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.find(*txn, user_id);
}

Expected<std::optional<uint64_t>, storage::StoreError> NodeCore::TurnAccounts::generation(std::string_view user_id) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.generation(*txn, user_id);
}

Expected<std::optional<uint64_t>, storage::StoreError> NodeCore::TurnAccounts::removed_at(std::string_view user_id) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.removed_at(*txn, user_id);
}

Expected<uint64_t, storage::StoreError> NodeCore::TurnAccounts::epoch() {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.epoch(*txn);
}

Expected<std::optional<LoginRecord>, storage::StoreError> NodeCore::TurnAccounts::last_login(std::string_view user_id) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.last_login(*txn, user_id);
}

Expected<bool, storage::StoreError> NodeCore::TurnAccounts::create(const Account& account) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.create(*txn, account);
}

Expected<void, storage::StoreError> NodeCore::TurnAccounts::update(const Account& account) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.update(*txn, account);
}

Expected<void, storage::StoreError> NodeCore::TurnAccounts::record_login(std::string_view user_id,
                                                                        const LoginRecord& record) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.store_.record_login(*txn, user_id, record);
}

Expected<std::vector<Account>, storage::StoreError> NodeCore::TurnAccounts::list_published(std::string_view after,
                                                                                          size_t limit) {
  constexpr size_t scan_batch = 256;
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  std::vector<Account> published;
  // LMDB has no index of published rows: the scan reads every account past the cursor.
  std::string from = after.empty() ? std::string() : std::string(after) + '\0';
  while (published.size() < limit) {
    auto batch = core_.store_.list(*txn, from, scan_batch);
    if (!batch) return Unexpected(batch.error());
    bool last = batch->size() < scan_batch;
    if (!last) from = batch->back().user_id + '\0';
    for (auto& account : *batch)
      if (account.publish && published.size() < limit) published.push_back(std::move(account));
    if (last) break;
  }
  return published;
}

std::string_view to_string(LookupResult result) {
  switch (result) {
    case LookupResult::found: return "found";
    case LookupResult::offline: return "offline";
    case LookupResult::not_found: return "not_found";
    case LookupResult::refused: return "refused";
    case LookupResult::agent_offline: return "agent_offline";
    case LookupResult::timeout: return "timeout";
    case LookupResult::unavailable: return "unavailable";
    case LookupResult::error: return "error";
  }
  return "error";
}

LookupResult lookup_result_of(uint16_t code) {
  switch (code) {
    case sig::error::unknown_user: return LookupResult::not_found;
    case sig::error::offline:
    case sig::error::no_live_lease: return LookupResult::offline;
    case sig::error::forbidden: return LookupResult::refused;
    case sig::error::agent_offline: return LookupResult::agent_offline;
    case sig::error::agent_timeout: return LookupResult::timeout;
    case sig::error::unavailable: return LookupResult::unavailable;
    default: return LookupResult::error;
  }
}

std::string_view to_string(CallEndReason reason) {
  switch (reason) {
    case CallEndReason::hung_up: return "hung_up";
    case CallEndReason::cancelled: return "cancelled";
    case CallEndReason::declined: return "declined";
    case CallEndReason::busy: return "busy";
    case CallEndReason::no_answer: return "no_answer";
    case CallEndReason::link_lost: return "link_lost";
    case CallEndReason::refused: return "refused";
    case CallEndReason::media_refused: return "media_refused";
    case CallEndReason::other: return "other";
  }
  return "other";
}

CallEndReason call_end_reason(uint16_t end_code) {
  switch (end_code) {
    case sig::error::hung_up: return CallEndReason::hung_up;
    case sig::error::cancelled: return CallEndReason::cancelled;
    case sig::error::declined: return CallEndReason::declined;
    case sig::error::busy: return CallEndReason::busy;
    case sig::error::no_answer: return CallEndReason::no_answer;
    case sig::error::link_lost: return CallEndReason::link_lost;
    case sig::error::media_refused: return CallEndReason::media_refused;
    // The agent's refusals passed on to the caller (policy, no live lease, ...).
    case sig::error::forbidden:
    case sig::error::no_live_lease:
    case sig::error::unknown_user:
    case sig::error::offline:
    case sig::error::agent_offline:
    case sig::error::agent_timeout: return CallEndReason::refused;
    default: return CallEndReason::other;
  }
}

size_t NodeCore::agent_link_count() const {
  size_t agents = 0;
  for (const auto& [link, state] : links_)
    if (state.agent_name) ++agents;
  return agents;
}

Expected<VoicemailStore::Usage, storage::StoreError> NodeCore::voicemail_usage() {
  if (!voicemail_) return Unexpected(open_error_.value_or(storage::StoreError{}));
  if (shared_voicemail_ != nullptr) {
    auto totals = shared_voicemail_->totals({});
    if (!totals) return Unexpected(totals.error());
    return totals->all;
  }
  auto txn = store_.begin_read();
  if (!txn) return Unexpected(txn.error());
  auto totals = voicemail_->totals(*txn, {});
  if (!totals) return Unexpected(totals.error());
  return totals->all;
}

}  // namespace tsunagu::rendezvous
