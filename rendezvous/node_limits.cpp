// NodeCore's limits that an attacker should not walk around (issue 11 §5):
// 429 with RETRY-AFTER, the node-wide cap on password work in flight.
// docs/security.md lists each limit with its default.
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace sig = tsunagu::proto;

void NodeCore::reply_retry_after(LinkId link, const proto::Message& request, uint32_t wait_s,
                                 std::string_view reason) {
  auto builder = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
  builder.add_u32(sig::attr::protocol_version, sig::protocol_version);
  builder.add_error(sig::error::too_many_attempts, reason);
  builder.add_u32(sig::attr::retry_after, wait_s);
  send(link, builder.finish());
}

bool NodeCore::password_work_full(LinkId link, const proto::Message& request) {
  // Every pending_auth_ entry is one scrypt run queued or running in the pool.
  if (pending_auth_.size() + pending_card_checks_.size() < settings_.max_password_jobs) return false;
  ++counters_.password_jobs_refused;
  reply_error(link, request, sig::error::unavailable, "Unavailable: too many password checks in progress, try again");
  return true;
}

void NodeCore::admit_link(LinkId link, LinkState& state, Now now) {
  state.last_message_ms = now.mono_ms;
  deadlines_.schedule(now.mono_ms + uint64_t{settings_.idle_timeout_s} * 1000, DeadlineKind::idle_check,
                      link_key(link));
  std::string source = source_key(state.observed);
  std::string_view refusal;
  uint32_t refusal_code = 0;
  if (links_.size() > settings_.max_links) {
    ++counters_.links_refused_node_full;
    refusal = "node full: too many links, try again later";
    refusal_code = sig::notice_code::node_full;
  } else if (prelogin_by_source_[source] >= settings_.max_prelogin_links_per_source) {
    ++counters_.links_refused_per_source;
    refusal = "too many links from your address that have not logged in";
    refusal_code = sig::notice_code::too_many_from_source;
  }
  if (!refusal.empty()) {
    // The daemon holds the close until TLS is up, so the notice is read.
    if (prelogin_by_source_[source] == 0) prelogin_by_source_.erase(source);
    state.refused = true;
    notice(link, refusal_code, refusal);
    close(link, std::string(refusal));
    return;
  }
  ++prelogin_by_source_[source];
  state.prelogin_source = std::move(source);
}

void NodeCore::set_link_user(LinkState& state, std::optional<std::string> user) {
  if (state.user == user) return;
  if (state.user) {
    auto counted = account_links_.find(*state.user);
    if (counted != account_links_.end() && --counted->second == 0) account_links_.erase(counted);
  }
  if (user) ++account_links_[*user];
  state.user = std::move(user);
}

void NodeCore::end_prelogin(LinkState& state) {
  if (state.prelogin_source.empty()) return;
  auto it = prelogin_by_source_.find(state.prelogin_source);
  if (it != prelogin_by_source_.end() && --it->second == 0) prelogin_by_source_.erase(it);
  state.prelogin_source.clear();
}

void NodeCore::forget_link_limits(LinkId link, LinkState& state) {
  end_prelogin(state);
  deadlines_.cancel(DeadlineKind::idle_check, link_key(link));
}

bool NodeCore::account_links_full(LinkId link, const std::string& user, uint16_t method,
                          const proto::TransactionId& transaction) {
  auto counted = account_links_.find(user);
  size_t held = counted == account_links_.end() ? 0 : counted->second;
  if (auto self = links_.find(link); self != links_.end() && self->second.user == user) --held;  // not besides itself
  if (held < settings_.max_links_per_account) return false;
  ++counters_.logins_refused_per_account;
  reply_error(link, method, transaction, sig::error::unavailable,
              "Unavailable: this account already has " + std::to_string(held) +
                  " links open (the most one account may hold); close one");
  return true;
}

// Checked lazily: the deadline was set when the link opened or last
// checked, and the link's own last_message_ms decides whether it is idle.
void NodeCore::check_idle(LinkId link, Now now) {
  const uint64_t idle_ms = uint64_t{settings_.idle_timeout_s} * 1000;
  auto it = links_.find(link);
  if (it == links_.end()) return;
  LinkState& state = it->second;
  uint64_t due = state.last_message_ms + idle_ms;
  // Presence links are kept (and ended) by their keepalives, agent links
  // by theirs; links not logged in yet by the login deadline; a caller's
  // query link lives as long as its call.
  bool exempt = state.agent_name || !state.prelogin_source.empty() || state.refused ||
                (state.user && state.role == sig::link_role::presence) || calls_->has_calls_on(link);
  if (due > now.mono_ms || exempt) {
    deadlines_.schedule(exempt ? now.mono_ms + idle_ms : due, DeadlineKind::idle_check, link_key(link));
    return;
  }
  ++counters_.idle_links_closed;
  notice(link, sig::notice_code::idle, "idle: no request in " + std::to_string(settings_.idle_timeout_s) + " s");
  close(link, "idle timeout");
}

namespace {
std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }
}  // namespace

bool NodeCore::admit_candidate(Call& call, size_t size) {
  if (call.state == sig::call_state::accepted) return true;
  // Before the callee consents, candidates only prepare a call that may never
  // happen: a caller must not pour unlimited bytes at a callee's link.
  if (call.early_candidates >= settings_.max_early_candidates ||
      call.early_candidate_bytes + size > settings_.max_early_candidate_bytes) {
    ++counters_.early_candidates_dropped;
    return false;
  }
  ++call.early_candidates;
  call.early_candidate_bytes += size;
  return true;
}

bool NodeCore::voicemail_limits_refuse(LinkId link, const proto::Message& request, const std::string& caller,
                                       const std::string& callee, uint64_t size, Now now) {
  PendingUploads from_caller = uploads_->from_sender(caller);
  const uint64_t uploading = from_caller.messages, pending_messages = from_caller.messages,
                 pending_bytes = from_caller.bytes;
  if (uploading >= settings_.voicemail_uploads_per_sender) {
    ++counters_.uploads_refused_per_sender;
    reply_error(link, request, sig::error::too_many_attempts,
                "Too Many Attempts: " + std::to_string(uploading) + " uploads of yours are in progress; finish them first");
    return true;
  }
  const uint64_t today = now.unix_s / 86400;
  SenderDay sent;
  if (auto it = voicemail_senders_.find(caller); it != voicemail_senders_.end() && it->second.day == today)
    sent = it->second;
  if (sent.messages + pending_messages >= settings_.voicemail_sender_messages_per_day ||
      sent.bytes + pending_bytes + size > settings_.voicemail_sender_bytes_per_day) {
    ++counters_.voicemails_refused_sender;
    reply_retry_after(link, request, static_cast<uint32_t>((today + 1) * 86400 - now.unix_s),
                      "Too Many Attempts: you have left " + std::to_string(sent.messages) + " messages (" +
                          mib(sent.bytes) + ") today, the most one sender may");
    return true;
  }
  return voicemail_store_full(link, request, callee, size);
}

bool NodeCore::voicemail_store_full(LinkId link, const proto::Message& request, const std::string& callee,
                                    uint64_t size) {
  auto at = callee.find('@');
  std::string domain = at == std::string::npos ? std::string() : callee.substr(at + 1);
  auto totals = mailboxes().totals(domain);
  if (!totals) {
    reply_storage_error(link, request, totals.error());
    return true;
  }
  // Uploads in progress count too: they are promised room.
  uint64_t pending_all = uploads_->pending_bytes(), pending_domain = uploads_->bytes_to_domain(domain);
  if (totals->all.bytes + pending_all + size > settings_.voicemail_store_quota_bytes) {
    ++counters_.voicemails_refused_store;
    reply_error(link, request, sig::error::over_quota,
                "Over Quota: this node's voicemail store is full (" + mib(settings_.voicemail_store_quota_bytes) +
                    "); try again later");
    return true;
  }
  if (!domain.empty() && totals->domain.bytes + pending_domain + size > settings_.voicemail_domain_quota_bytes) {
    ++counters_.voicemails_refused_domain;
    reply_error(link, request, sig::error::over_quota,
                "Over Quota: the mailboxes of " + domain + " are full together (" +
                    mib(settings_.voicemail_domain_quota_bytes) + ")");
    return true;
  }
  return false;
}

void NodeCore::charge_voicemail_sender(const std::string& caller, uint64_t size, Now now) {
  const uint64_t today = now.unix_s / 86400;
  // Yesterday's counts are of no use: forget them all when a day begins, so
  // the table holds only today's senders.
  if (!voicemail_senders_.empty() && voicemail_senders_.begin()->second.day != today) {
    std::erase_if(voicemail_senders_, [&](const auto& entry) { return entry.second.day != today; });
  }
  SenderDay& day = voicemail_senders_[caller];
  day.day = today;
  ++day.messages;
  day.bytes += size;
}

}  // namespace tsunagu::rendezvous
