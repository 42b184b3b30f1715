#include "lan-agent/agent_core.hpp"

#include <algorithm>

#include "proto/signalling.hpp"

namespace tsunagu::lanagent {
namespace {

std::string without_separators(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '-' && c != '.' && c != ' ') out.push_back(c);
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<std::string> AgentCore::extension_for(std::string_view user_id) const {
  if (user_id.empty() || user_id.size() > proto::max_user_id_size) return std::nullopt;
  auto at = user_id.find('@');
  if (at != std::string_view::npos) {
    std::string_view local = user_id.substr(0, at), domain = user_id.substr(at + 1);
    if (local.empty() || local.size() > alloc::kMaxExtensionLength) return std::nullopt;
    for (const auto& d : identity_.domains)
      if (d == domain) return std::string(local);
    return std::nullopt;
  }
  std::string dialled = without_separators(user_id);
  size_t best = 0;
  bool found = false;
  for (const auto& prefix : identity_.number_prefixes) {
    std::string p = without_separators(prefix);
    if (p.empty() || !dialled.starts_with(p)) continue;
    if (!found || p.size() > best) best = p.size();
    found = true;
  }
  if (!found) return std::nullopt;
  std::string rest = dialled.substr(best);
  if (!all_digits(rest) || rest.size() > kMaxExtensionDigits) return std::nullopt;
  return rest;
}

Expected<const AgentCore::BoundLeases*, alloc::TableError> AgentCore::bound_leases(const std::string& extension,
                                                                                  int64_t now) {
  // (`now` only satisfies find_by_client: every active lease is kept.)
  auto snapshot = table_->held_snapshot();
  if (snapshot) {
    if (*snapshot != cached_snapshot_) {
      cached_.clear();
      cached_snapshot_ = *snapshot;
    }
    if (auto found = cached_.find(extension); found != cached_.end()) return &found->second;
  }
  BoundLeases read;
  auto binding = table_->binding(extension);
  if (!binding) return Unexpected(binding.error());
  if (binding->has_value()) {
    read.bound = true;
    // Every active lease, expired or not: whether it is live is decided at
    // each use, with that lookup's `now`.
    auto leases = table_->find_by_client((*binding)->client, now, true);  // the binding just read, not read again
    if (!leases) return Unexpected(leases.error());
    for (const auto& lease : *leases)
      if (lease.state == alloc::LeaseState::active)
        read.leases.push_back({lease.address, lease.expires, lease.live_until});
  }
  if (!snapshot) {
    uncached_ = std::move(read);
    return &uncached_;
  }
  if (cached_.size() >= kMaxCachedExtensions) cached_.clear();
  return &cached_.insert_or_assign(extension, std::move(read)).first->second;
}

LookupAnswer AgentCore::lookup(std::string_view user_id, std::string_view caller, int64_t now) {
  LookupAnswer answer;
  auto extension = extension_for(user_id);
  if (!extension) {
    answer.error = proto::error::unknown_user;
    answer.reason = "Unknown User: not an extension of this agent";
    answer.log_detail = "not one of our domains or number prefixes";
    return answer;
  }
  answer.extension = *extension;
  // The policy comes first, so a refused caller learns nothing, not even
  // whether the extension is bound.
  auto decision = policy_.decide(*extension, caller);
  if (!decision.allowed) {
    answer.error = proto::error::agent_policy_refused;
    answer.reason = kPolicyRefusedReason;
    answer.log_detail = std::string(decision.why) +
                        (decision.rule ? " " + std::to_string(*decision.rule + 1) : std::string());
    return answer;
  }
  auto entries = bound_leases(answer.extension, now);
  if (!entries) {
    answer.error = proto::error::server_error;
    answer.reason = "Server Error: allocation table unreadable";
    answer.log_detail = entries.error().detail;
    return answer;
  }
  if (!(*entries)->bound) {
    answer.error = proto::error::unknown_user;
    answer.reason = "Unknown User: no such extension";
    answer.log_detail = "no binding";
    return answer;
  }
  bool infinite = false;
  int64_t latest = 0;
  for (const auto& lease : (*entries)->leases) {
    if (lease.live_until <= now) continue;  // LeaseRecord::live: active (all are) and not past live_until
    answer.addresses.push_back(lease.address);
    if (lease.expires == alloc::LeaseEvent::kInfinite) infinite = true;
    latest = std::max(latest, lease.live_until);
  }
  if (answer.addresses.empty()) {
    answer.error = proto::error::no_live_lease;
    answer.reason = "No Live Lease: the extension's terminal has no address now";
    answer.log_detail = "bound, no live lease";
    return answer;
  }
  answer.expires = infinite ? 0 : static_cast<uint64_t>(std::max<int64_t>(latest, 0));
  answer.log_detail = std::string(decision.why);
  return answer;
}

std::string_view to_string(AnswerResult result) {
  switch (result) {
    case AnswerResult::found: return "found";
    case AnswerResult::not_found: return "not_found";
    case AnswerResult::refused: return "refused";
    case AnswerResult::no_live_lease: return "no_live_lease";
    case AnswerResult::bad_request: return "bad_request";
    case AnswerResult::error: return "error";
  }
  return "error";
}

Bytes AgentCore::respond(const proto::Message& request, int64_t now, LookupAnswer* answer_out) {
  auto error_response = [&](uint16_t code, std::string_view reason) {
    AnswerResult result = code == proto::error::unknown_user           ? AnswerResult::not_found
                          : code == proto::error::agent_policy_refused ? AnswerResult::refused
                          : code == proto::error::no_live_lease        ? AnswerResult::no_live_lease
                          : code == proto::error::bad_request          ? AnswerResult::bad_request
                                                                       : AnswerResult::error;
    ++answers_[static_cast<size_t>(result)];
    auto b = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
    b.add_error(code, reason);
    b.add_u32(proto::attr::protocol_version, proto::protocol_version);
    return b.finish();
  };
  if (request.method != proto::method::forwarded_lookup)
    return error_response(proto::error::bad_request, "Bad Request: the agent answers forwarded-lookup only");
  if (const auto* version = request.find(proto::attr::protocol_version)) {
    auto v = proto::read_u32(*version);
    if (!v) return error_response(proto::error::bad_request, "Bad Request: malformed PROTOCOL-VERSION");
    if (*v != proto::protocol_version)
      return error_response(proto::error::unsupported_version, "Unsupported Version");
  }
  const auto* user = request.find(proto::attr::user_id);
  const auto* caller = request.find(proto::attr::caller_id);
  if (user == nullptr || caller == nullptr)
    return error_response(proto::error::bad_request, "Bad Request: USER-ID and CALLER-ID are required");
  std::string_view user_id = proto::read_string(*user), caller_id = proto::read_string(*caller);
  if (user_id.empty() || user_id.size() > proto::max_user_id_size || caller_id.empty() ||
      caller_id.size() > proto::max_user_id_size)
    return error_response(proto::error::bad_request, "Bad Request: USER-ID or CALLER-ID out of limits");
  LookupAnswer answer = lookup(user_id, caller_id, now);
  Bytes out;
  if (answer.error != 0) {
    out = error_response(answer.error, answer.reason);
  } else {
    auto b = proto::MessageBuilder::response_to(request, proto::MessageClass::success);
    b.add_u32(proto::attr::protocol_version, proto::protocol_version);
    b.add_string(proto::attr::user_id, user_id);
    if (policy_.config().show_lease_addresses) {
      for (auto address : answer.addresses) {
        address.port = 0;
        b.add_xor_address(proto::attr::lease_address, address);
      }
    }
    b.add_u64(proto::attr::lease_expires, answer.expires);
    b.add_string(proto::attr::agent_name, identity_.name);
    out = b.finish();
    ++answers_[static_cast<size_t>(AnswerResult::found)];
  }
  if (answer_out != nullptr) *answer_out = std::move(answer);
  return out;
}

void AgentCore::fill_hello(proto::MessageBuilder& builder) const {
  for (const auto& d : identity_.domains) builder.add_string(proto::attr::domain, d);
  for (const auto& p : identity_.number_prefixes) builder.add_string(proto::attr::number_prefix, p);
}

HelloResult AgentCore::read_hello_response(const proto::Message& response) {
  HelloResult result;
  if (response.message_class == proto::MessageClass::success) {
    result.status = HelloStatus::accepted;
    if (const auto* name = response.find(proto::attr::agent_name)) result.agent_name = proto::read_string(*name);
    return result;
  }
  const auto* code = response.find(proto::attr::error_code);
  auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
  result.code = parsed ? parsed->code : 0;
  result.reason = parsed ? std::string(parsed->reason.substr(0, 256)) : "malformed error response";
  switch (result.code) {
    case proto::error::forbidden: result.status = HelloStatus::not_enrolled; break;
    case proto::error::domain_held: result.status = HelloStatus::domain_held; break;
    case proto::error::unsupported_version: result.status = HelloStatus::bad_version; break;
    default: result.status = HelloStatus::other; break;
  }
  return result;
}

}  // namespace tsunagu::lanagent
