// Voicemail store-and-forward (docs/voicemail.md).
//
//   caller                              node                         callee (later)
//   voicemail_begin(USER-ID, SIZE) -->  checks size, quota, service
//                                  <--  success(UPLOAD)
//   voicemail_chunk(UPLOAD, OFFSET, DATA) ... (in order, <= 8 KiB each)
//   voicemail_finish(UPLOAD) -->        one LMDB write (group commit)
//                                  <--  success(VOICEMAIL-ID) only after the commit
//                                       login -->
//                                       voicemail_list -->  <-- entries
//                                       voicemail_fetch(ID, OFFSET) ... <-- DATA
//                                       (the terminal saves the file)
//                                       voicemail_delete(ID) --> deleted; success after the commit
//
// A message is deleted only by its owner's voicemail_delete (the
// acknowledgement) or when it is older than the retention period; a terminal
// that goes away before acknowledging finds it again at its next login.
// Uploads in progress live in memory and end with their link.
#include <algorithm>

#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;
constexpr size_t max_uploads_per_link = 2;
constexpr size_t max_list_entries = 64;
constexpr uint64_t sweep_interval_ms = 60'000;
constexpr uint64_t upload_sweep_ms = 1'000;  // idle and too slow uploads are dropped within a second
constexpr size_t max_expired_per_sweep = 1000;

std::string kib(uint64_t bytes) { return std::to_string((bytes + 1023) / 1024) + " KiB"; }

}  // namespace

uint32_t NodeCore::voicemail_waiting_flag(const std::string& user) {
  if (!voicemail_) return 0;
  auto first = mailboxes().list(user, 0, 1);
  return first && !first->empty() ? sig::presence_flag::voicemail_waiting : 0;
}

void NodeCore::handle_voicemail(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.user) return reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: log in first");
  if (!voicemail_) return reply_storage_error(link, request, *open_error_);
  const std::string user = *state.user;
  switch (request.method) {
    case sig::method::voicemail_begin: return voicemail_begin(link, user, request, now);
    case sig::method::voicemail_chunk: return voicemail_chunk(link, request, now);
    case sig::method::voicemail_finish: return voicemail_finish(link, request, now);
    case sig::method::voicemail_list: return voicemail_list(link, user, request, now);
    case sig::method::voicemail_fetch: return voicemail_fetch(link, user, request, now);
    default: return voicemail_delete(link, user, request);
  }
}

void NodeCore::handle_agent_voicemail(LinkId link, const proto::Message& request, Now now) {
  if (!voicemail_) return reply_storage_error(link, request, *open_error_);
  const auto* target = request.find(sig::attr::user_id);
  if (target == nullptr) return reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID is required");
  std::string owner(proto::read_string(*target));
  if (!sig::valid_user_id(owner)) return reply_error(link, request, sig::error::invalid_user_id);
  Route route = find_route(owner);
  if (!route.agent || *route.agent != link)
    return reply_error(link, request, sig::error::forbidden, "Forbidden: " + owner + " is not routed to this agent");
  switch (request.method) {
    case sig::method::voicemail_list: return voicemail_list(link, owner, request, now);
    case sig::method::voicemail_fetch: return voicemail_fetch(link, owner, request, now);
    default: return voicemail_delete(link, owner, request);
  }
}

void NodeCore::voicemail_begin(LinkId link, const std::string& caller, const proto::Message& request, Now now,
                               bool policy_checked) {
  const auto* target = request.find(sig::attr::user_id);
  const auto* size_attr = request.find(sig::attr::voicemail_size);
  if (target == nullptr || size_attr == nullptr)
    return reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID and VOICEMAIL-SIZE are required");
  std::string callee(proto::read_string(*target));
  auto size = proto::read_u64(*size_attr);
  if (!sig::valid_user_id(callee)) return reply_error(link, request, sig::error::invalid_user_id);
  if (!size || *size == 0) return reply_error(link, request, sig::error::bad_request, "Bad Request: an empty message");
  // A LAN extension (EXT@DOMAIN, +NUMBER of an agent) has no account: its
  // mailbox is kept here under the dialled ID and its agent delivers it.
  Route route = find_route(callee);
  if (route.storage_error) return reply_storage_error(link, request, *route.storage_error);
  if (*size > settings_.voicemail_max_message_bytes)
    return reply_error(link, request, sig::error::too_large,
                       "Too Large: the message is " + kib(*size) + "; this node takes at most " +
                           kib(settings_.voicemail_max_message_bytes) + " per message");
  PendingUploads to_callee = uploads_->to_mailbox(callee);
  const uint64_t pending_for_callee = to_callee.bytes, pending_messages = to_callee.messages;
  if (uploads_->on_link(link) >= max_uploads_per_link)
    return reply_error(link, request, sig::error::too_many_attempts, "Too Many Attempts: finish the other uploads first");
  if (uploads_->pending_bytes() + *size > settings_.voicemail_pending_bytes)
    return reply_error(link, request, sig::error::unavailable, "Unavailable: too many messages being uploaded; retry later");
  if (!route.routed) {
    auto account = accounts_.find(callee);
    if (!account) return reply_storage_error(link, request, account.error());
    bool takes_voicemail = account->has_value() && ((*account)->services & sig::service_flag::voicemail) != 0;
    if (!account->has_value() || (!takes_voicemail && !visible_to(**account, caller)))
      return reply_error(link, request, sig::error::unknown_user);  // a hidden user: as if unknown
    if (!takes_voicemail)
      return reply_error(link, request, sig::error::forbidden, "Forbidden: " + callee + " does not take voicemail");
  } else if (callee.find('@') == std::string::npos) {
    return reply_error(link, request, sig::error::not_implemented,
                       "Not Implemented: voicemail for numbers routed to a LAN agent; use EXT@DOMAIN");
  } else if (!policy_checked) {
    // The agent's edge policy decides who may reach an extension, by call or
    // by voicemail; without the agent nobody can ask it.
    if (!route.agent)
      return reply_error(link, request, sig::error::agent_offline,
                         "Agent Offline: the LAN agent for " + route.route +
                             " is not connected, and its edge policy decides who may leave voicemail");
    return ask_edge_policy(link, request, *route.agent, caller, callee, now);
  }
  auto usage = mailboxes().usage(callee);
  if (!usage) return reply_storage_error(link, request, usage.error());
  if (usage->messages + pending_messages >= settings_.voicemail_max_messages)
    return reply_error(link, request, sig::error::over_quota,
                       "Over Quota: " + callee + "'s mailbox is full (" + std::to_string(usage->messages) +
                           " messages, the most it holds)");
  if (usage->bytes + pending_for_callee + *size > settings_.voicemail_quota_bytes)
    return reply_error(link, request, sig::error::over_quota,
                       "Over Quota: " + callee + "'s mailbox is full (" + kib(usage->bytes + pending_for_callee) +
                           " of " + kib(settings_.voicemail_quota_bytes) + " used; this message needs " + kib(*size) +
                           ")");
  if (voicemail_limits_refuse(link, request, caller, callee, *size, now)) return;
  VoicemailUpload upload{caller, callee, *size, {}, now.mono_ms, now.mono_ms};
  upload.data.reserve(*size);
  if (uploads_->empty()) deadlines_.schedule(now.mono_ms + upload_sweep_ms, DeadlineKind::upload_sweep);
  uint32_t id = uploads_->begin(link, std::move(upload));
  auto ok = success(request);
  ok.add_u32(sig::attr::voicemail_upload, id);
  ok.add_u64(sig::attr::voicemail_size, *size);
  send(link, ok.finish());
}

void NodeCore::ask_edge_policy(LinkId link, const proto::Message& request, LinkId agent, const std::string& caller,
                               const std::string& callee, Now now) {
  if (current_message_.empty())  // nothing to handle again on the answer
    return reply_error(link, request, sig::error::unavailable, "Unavailable: the LAN agent is overloaded");
  send_forward(link, request, agent, callee, caller, now, Bytes(current_message_.begin(), current_message_.end()));
}

// The agent allows the caller when it answers the lookup, or says only that
// the terminal has no address now (481: the usual reason to leave voicemail);
// its refusal (403 policy, 404 no such extension, ...) is the caller's answer.
void NodeCore::edge_policy_answered(const PendingForward& forward, const proto::Message& response, Now now) {
  std::optional<proto::ErrorCode> refusal;
  if (response.message_class == proto::MessageClass::error) {
    const auto* code = response.find(proto::attr::error_code);
    refusal = code ? proto::read_error_code(*code) : std::nullopt;
    if (!refusal) return answer_forward(forward, sig::error::server_error, "Server Error: malformed answer from the LAN agent");
  }
  if (refusal && refusal->code != sig::error::no_live_lease) return answer_forward(forward, refusal->code, refusal->reason);
  const LinkState& state = links_.at(forward.caller);
  auto decoded = proto::decode(forward.request);
  if (!state.user || !decoded) return;  // logged out meanwhile; the request decoded once already
  voicemail_begin(forward.caller, *state.user, decoded->message, now, /*policy_checked=*/true);
}

void NodeCore::voicemail_chunk(LinkId link, const proto::Message& request, Now now) {
  const auto* id = request.find(sig::attr::voicemail_upload);
  const auto* offset = request.find(sig::attr::voicemail_offset);
  const auto* data = request.find(sig::attr::voicemail_data);
  if (id == nullptr || offset == nullptr || data == nullptr)
    return reply_error(link, request, sig::error::bad_request,
                       "Bad Request: VOICEMAIL-UPLOAD, VOICEMAIL-OFFSET and VOICEMAIL-DATA are required");
  auto id_value = proto::read_u32(*id);
  auto at = proto::read_u64(*offset);
  if (!id_value || !at) return reply_error(link, request, sig::error::bad_request, "Bad Request: malformed attribute");
  VoicemailUpload* found = uploads_->find(link, *id_value);
  if (found == nullptr)
    return reply_error(link, request, sig::error::not_found, "Not Found: no such upload on this link");
  VoicemailUpload& upload = *found;
  if (uploads_->expired(upload, now.mono_ms)) {  // before the sweep got to it
    uploads_->take(link, *id_value);
    ++counters_.uploads_dropped;
    return reply_error(link, request, sig::error::not_found, "Not Found: the upload timed out; begin again");
  }
  if (data->value.size() > sig::max_voicemail_chunk)
    return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-DATA is at most 8192 bytes");
  if (*at != upload.data.size())
    return reply_error(link, request, sig::error::bad_request,
                       "Bad Request: chunk at offset " + std::to_string(*at) + ", expected " +
                           std::to_string(upload.data.size()));
  if (data->value.size() > upload.size - upload.data.size())
    return reply_error(link, request, sig::error::bad_request, "Bad Request: more bytes than VOICEMAIL-SIZE announced");
  upload.data.insert(upload.data.end(), data->value.begin(), data->value.end());
  upload.started_ms = now.mono_ms;  // active: the timeout counts from the last chunk
  auto ok = success(request);
  ok.add_u64(sig::attr::voicemail_offset, upload.data.size());
  send(link, ok.finish());
}

void NodeCore::voicemail_finish(LinkId link, const proto::Message& request, Now now) {
  const auto* id = request.find(sig::attr::voicemail_upload);
  auto id_value = id ? proto::read_u32(*id) : std::nullopt;
  if (!id_value) return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-UPLOAD is required");
  auto taken = uploads_->take(link, *id_value);
  if (!taken) return reply_error(link, request, sig::error::not_found, "Not Found: no such upload on this link");
  VoicemailUpload upload = std::move(*taken);
  if (upload.data.size() != upload.size)
    return reply_error(link, request, sig::error::bad_request,
                       "Bad Request: incomplete message (" + std::to_string(upload.data.size()) + " of " +
                           std::to_string(upload.size) + " bytes)");
  // On LMDB the quota is checked again inside the write (other messages may
  // have landed since begin); in cluster mode on the read connection, so two
  // nodes storing into one mailbox at the same instant may each pass it by one.
  if (shared_voicemail_ == nullptr && write_txn() == nullptr) return reply_storage_error(link, request, txn_error_);
  auto usage = mailboxes().usage(upload.callee);
  if (!usage) return reply_storage_error(link, request, usage.error());
  if (usage->messages >= settings_.voicemail_max_messages ||
      usage->bytes + upload.size > settings_.voicemail_quota_bytes)
    return reply_error(link, request, sig::error::over_quota,
                       "Over Quota: " + upload.callee + "'s mailbox filled up during the upload");
  if (voicemail_store_full(link, request, upload.callee, upload.size)) return;
  auto stored = mailboxes().add(upload.callee, upload.caller, now.unix_s, upload.data);
  if (!stored) return reply_storage_error(link, request, stored.error());
  ++counters_.voicemails_stored;
  if (watch_changes_) mailbox_changes_.push_back(upload.callee);
  audit_after_commit(audit::AuditEvent{"voicemail",
                                       {{"action", "stored"},
                                        {"result", "ok"},
                                        {"owner", upload.callee},
                                        {"id", std::to_string(*stored)},
                                        {"from", upload.caller},
                                        {"bytes", std::to_string(upload.size)}}});
  counters_.voicemail_bytes_stored += upload.size;
  charge_voicemail_sender(upload.caller, upload.size, now);
  auto ok = success(request);
  ok.add_u64(sig::attr::voicemail_id, *stored);
  ok.add_string(sig::attr::user_id, upload.callee);
  // Acknowledged only once durable: a kill -9 after this reply loses nothing.
  reply_after_commit(link, request, ok.finish(), "the message was not stored");
}

void NodeCore::voicemail_list(LinkId link, const std::string& owner, const proto::Message& request, Now now) {
  uint64_t after = 0;
  if (const auto* a = request.find(sig::attr::voicemail_id)) {
    auto v = proto::read_u64(*a);
    if (!v) return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-ID is a u64");
    after = *v;
  }
  auto entries = mailboxes().list(owner, after, max_list_entries + 1);
  if (!entries) return reply_storage_error(link, request, entries.error());
  uint64_t oldest = now.unix_s - std::min<uint64_t>(now.unix_s, uint64_t{settings_.voicemail_retention_days} * 86400);
  auto ok = success(request);
  size_t listed = 0;
  for (const auto& entry : *entries) {
    if (listed == max_list_entries) break;
    ++listed;
    if (entry.time < oldest) continue;  // past retention; the next sweep deletes it
    ok.add(sig::attr::voicemail_entry, proto::encode_voicemail_entry(entry));
  }
  // More than one page: VOICEMAIL-ID is the cursor to list after.
  if (entries->size() > max_list_entries) ok.add_u64(sig::attr::voicemail_id, (*entries)[max_list_entries - 1].id);
  send(link, ok.finish());
}

void NodeCore::voicemail_fetch(LinkId link, const std::string& owner, const proto::Message& request, Now) {
  const auto* id = request.find(sig::attr::voicemail_id);
  auto id_value = id ? proto::read_u64(*id) : std::nullopt;
  if (!id_value) return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-ID is required");
  uint64_t offset = 0;
  if (const auto* o = request.find(sig::attr::voicemail_offset)) {
    auto v = proto::read_u64(*o);
    if (!v) return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-OFFSET is a u64");
    offset = *v;
  }
  auto entry = mailboxes().find(owner, *id_value);
  if (!entry) return reply_storage_error(link, request, entry.error());
  if (!entry->has_value())
    return reply_error(link, request, sig::error::not_found, "Not Found: no message " + std::to_string(*id_value));
  if (offset > (*entry)->size)
    return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-OFFSET past the end");
  auto bytes = mailboxes().read(owner, *id_value, offset, sig::max_voicemail_chunk);
  if (!bytes) return reply_storage_error(link, request, bytes.error());
  if (!bytes->has_value()) return reply_storage_error(link, request, {storage::StoreErrc::corrupted, 0, "voicemail data missing"});
  auto ok = success(request);
  ok.add_u64(sig::attr::voicemail_id, *id_value);
  ok.add_u64(sig::attr::voicemail_size, (*entry)->size);
  ok.add_u64(sig::attr::voicemail_time, (*entry)->time);
  ok.add_string(sig::attr::caller_id, (*entry)->caller);
  ok.add_u64(sig::attr::voicemail_offset, offset);
  ok.add(sig::attr::voicemail_data, **bytes);
  send(link, ok.finish());
  // Once per message fetch (its first chunk), not per chunk.
  if (offset == 0) {
    auto holder = links_.find(link);
    bool agent = holder != links_.end() && holder->second.agent_ready;
    audit_->record(audit::AuditEvent{"voicemail",
                                     {{"action", "delivered"},
                                      {"owner", owner},
                                      {"id", std::to_string(*id_value)},
                                      {"from", (*entry)->caller},
                                      {"to", agent ? "agent:" + holder->second.agent_name.value_or("") : "user"}}});
  }
}

void NodeCore::voicemail_delete(LinkId link, const std::string& owner, const proto::Message& request) {
  const auto* id = request.find(sig::attr::voicemail_id);
  auto id_value = id ? proto::read_u64(*id) : std::nullopt;
  if (!id_value) return reply_error(link, request, sig::error::bad_request, "Bad Request: VOICEMAIL-ID is required");
  auto removed = mailboxes().remove(owner, *id_value);
  if (!removed) return reply_storage_error(link, request, removed.error());
  if (!*removed)
    return reply_error(link, request, sig::error::not_found, "Not Found: no message " + std::to_string(*id_value));
  ++counters_.voicemails_deleted;
  audit_after_commit(audit::AuditEvent{
      "voicemail", {{"action", "deleted"}, {"result", "ok"}, {"owner", owner}, {"id", std::to_string(*id_value)}}});
  auto ok = success(request);
  ok.add_u64(sig::attr::voicemail_id, *id_value);
  reply_after_commit(link, request, ok.finish(), "the message was not deleted");
}

void NodeCore::voicemail_link_closed(LinkId link) { uploads_->drop_link(link); }

void NodeCore::expire_uploads(Now now) {
  // next_deadline asks for the sweep while uploads exist.
  deadlines_.schedule(now.mono_ms + upload_sweep_ms, DeadlineKind::upload_sweep);
  counters_.uploads_dropped += uploads_->drop_expired(now.mono_ms);
}

void NodeCore::sweep_voicemail(Now now) {
  if (!voicemail_) return;
  deadlines_.schedule(now.mono_ms + sweep_interval_ms, DeadlineKind::retention_sweep);
  uint64_t retention = uint64_t{settings_.voicemail_retention_days} * 86400;
  if (now.unix_s <= retention) return;
  auto expired = mailboxes().expire(now.unix_s - retention, max_expired_per_sweep);
  if (!expired) return note_storage_error(expired.error());
  counters_.voicemails_deleted += *expired;
}

Expected<VoicemailBoxes::Usage, storage::StoreError> NodeCore::TurnVoicemail::usage(std::string_view mailbox) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->usage(*txn, mailbox);
}

Expected<VoicemailBoxes::Totals, storage::StoreError> NodeCore::TurnVoicemail::totals(std::string_view domain) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->totals(*txn, domain);
}

Expected<std::vector<proto::VoicemailEntry>, storage::StoreError> NodeCore::TurnVoicemail::list(
    std::string_view mailbox, uint64_t after, size_t limit) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->list(*txn, mailbox, after, limit);
}

Expected<std::optional<proto::VoicemailEntry>, storage::StoreError> NodeCore::TurnVoicemail::find(
    std::string_view mailbox, uint64_t id) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->find(*txn, mailbox, id);
}

Expected<std::optional<Bytes>, storage::StoreError> NodeCore::TurnVoicemail::read(std::string_view mailbox, uint64_t id,
                                                                                 uint64_t offset, size_t max) {
  auto* txn = core_.read_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  auto view = core_.voicemail_->read(*txn, mailbox, id, offset, max);
  if (!view) return Unexpected(view.error());
  if (!view->has_value()) return std::optional<Bytes>{};
  return std::optional<Bytes>(Bytes((*view)->begin(), (*view)->end()));
}

Expected<uint64_t, storage::StoreError> NodeCore::TurnVoicemail::add(std::string_view mailbox, std::string_view caller,
                                                                     uint64_t time, ByteView data) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->add(*txn, mailbox, caller, time, data);
}

Expected<bool, storage::StoreError> NodeCore::TurnVoicemail::remove(std::string_view mailbox, uint64_t id) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->remove(*txn, mailbox, id);
}

Expected<size_t, storage::StoreError> NodeCore::TurnVoicemail::expire(uint64_t older_than, size_t max) {
  auto* txn = core_.write_txn();
  if (txn == nullptr) return Unexpected(core_.txn_error_);
  return core_.voicemail_->expire(*txn, older_than, max);
}

}  // namespace tsunagu::rendezvous
