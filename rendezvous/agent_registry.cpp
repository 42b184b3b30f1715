#include "rendezvous/agent_registry.hpp"

#include <algorithm>
#include <sstream>

namespace tsunagu::rendezvous {
namespace {

constexpr size_t max_enrollment_size = 8192;

bool domain_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

}  // namespace

bool valid_domain(std::string_view domain) {
  return !domain.empty() && domain.size() <= 63 && domain.front() != '.' && domain.front() != '-' &&
         std::all_of(domain.begin(), domain.end(), domain_char);
}

bool valid_number_prefix(std::string_view prefix) {
  return prefix.size() >= 2 && prefix.size() <= 32 && prefix.front() == '+' &&
         std::all_of(prefix.begin() + 1, prefix.end(), [](char c) { return (c >= '0' && c <= '9') || c == '-'; });
}

bool valid_agent_name(std::string_view name) {
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), domain_char);
}

std::string encode_enrollment(const AgentEnrollment& e) {
  std::string out = "v1\nname " + e.name + "\nenrolled " + std::to_string(e.enrolled_at) + "\n";
  for (const auto& d : e.domains) out += "domain " + d + "\n";
  for (const auto& p : e.number_prefixes) out += "prefix " + p + "\n";
  return out;
}

std::optional<AgentEnrollment> decode_enrollment(std::string_view text) {
  if (text.size() > max_enrollment_size || text.substr(0, 3) != "v1\n") return std::nullopt;
  AgentEnrollment e;
  size_t at = 3;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    std::string_view key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "name") e.name = value;
    else if (key == "enrolled") {
      uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      e.enrolled_at = v;
    } else if (key == "domain") e.domains.emplace_back(value);
    else if (key == "prefix") e.number_prefixes.emplace_back(value);
    // unknown keys: written by a newer version; ignore
  }
  if (!valid_agent_name(e.name)) return std::nullopt;
  return e;
}

Expected<AgentRegistry, storage::StoreError> AgentRegistry::open(storage::Environment& env) {
  AgentRegistry registry;
  auto agents = env.open_database("agents");
  if (!agents) return Unexpected(agents.error());
  auto routes = env.open_database("routes");
  if (!routes) return Unexpected(routes.error());
  registry.agents_ = *agents;
  registry.routes_ = *routes;
  return registry;
}

Expected<std::optional<std::string>, storage::StoreError> AgentRegistry::enroll(storage::Transaction& txn,
                                                                                const AgentEnrollment& e) {
  std::vector<std::string> keys;
  for (const auto& d : e.domains) keys.push_back("d:" + d);
  for (const auto& p : e.number_prefixes) keys.push_back("p:" + p);
  for (const auto& key : keys) {
    auto owner = txn.get(routes_, as_bytes(key));
    if (!owner) return Unexpected(owner.error());
    if (owner->has_value() && as_chars(**owner) != e.name)
      return std::optional<std::string>(key.substr(2) + " is routed to agent " + std::string(as_chars(**owner)));
  }
  if (auto removed = remove(txn, e.name); !removed) return Unexpected(removed.error());
  for (const auto& key : keys)
    if (auto put = txn.put(routes_, as_bytes(key), as_bytes(e.name)); !put) return Unexpected(put.error());
  if (auto put = txn.put(agents_, as_bytes(e.name), as_bytes(encode_enrollment(e))); !put)
    return Unexpected(put.error());
  return std::optional<std::string>{};
}

Expected<bool, storage::StoreError> AgentRegistry::remove(storage::Transaction& txn, std::string_view name) {
  auto existing = find(txn, name);
  if (!existing) return Unexpected(existing.error());
  if (!existing->has_value()) return false;
  for (const auto& d : (*existing)->domains)
    if (auto erased = txn.erase(routes_, as_bytes("d:" + d)); !erased) return Unexpected(erased.error());
  for (const auto& p : (*existing)->number_prefixes)
    if (auto erased = txn.erase(routes_, as_bytes("p:" + p)); !erased) return Unexpected(erased.error());
  return txn.erase(agents_, as_bytes(name));
}

Expected<std::optional<AgentEnrollment>, storage::StoreError> AgentRegistry::find(storage::Transaction& txn,
                                                                                  std::string_view name) {
  auto raw = txn.get(agents_, as_bytes(name));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<AgentEnrollment>{};
  auto decoded = decode_enrollment(as_chars(**raw));
  if (!decoded) return Unexpected(storage::StoreError{storage::StoreErrc::corrupted, 0, "unreadable agent record"});
  return std::optional<AgentEnrollment>(std::move(*decoded));
}

Expected<std::vector<AgentEnrollment>, storage::StoreError> AgentRegistry::list(storage::Transaction& txn) {
  std::vector<AgentEnrollment> out;
  auto scanned = txn.scan(agents_, {}, [&](ByteView, ByteView value) {
    if (auto e = decode_enrollment(as_chars(value))) out.push_back(std::move(*e));
    return true;
  });
  if (!scanned) return Unexpected(scanned.error());
  return out;
}

Expected<std::optional<std::string>, storage::StoreError> AgentRegistry::domain_owner(storage::Transaction& txn,
                                                                                      std::string_view domain) {
  auto raw = txn.get(routes_, as_bytes("d:" + std::string(domain)));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<std::string>{};
  return std::optional<std::string>(std::string(as_chars(**raw)));
}

Expected<std::optional<std::string>, storage::StoreError> AgentRegistry::prefix_owner(storage::Transaction& txn,
                                                                                      std::string_view prefix) {
  auto raw = txn.get(routes_, as_bytes("p:" + std::string(prefix)));
  if (!raw) return Unexpected(raw.error());
  if (!raw->has_value()) return std::optional<std::string>{};
  return std::optional<std::string>(std::string(as_chars(**raw)));
}

Expected<std::optional<std::string>, storage::StoreError> AgentRegistry::route_of(storage::Transaction& txn,
                                                                                  std::string_view user_id) {
  if (auto at = user_id.find('@'); at != std::string_view::npos) {
    std::string_view domain = user_id.substr(at + 1);
    auto owner = domain_owner(txn, domain);
    if (!owner) return Unexpected(owner.error());
    return owner->has_value() ? std::optional<std::string>(std::string(domain)) : std::optional<std::string>{};
  }
  if (!user_id.starts_with('+')) return std::optional<std::string>{};
  for (size_t n = std::min<size_t>(user_id.size(), 32); n >= 2; --n) {
    auto owner = prefix_owner(txn, user_id.substr(0, n));
    if (!owner) return Unexpected(owner.error());
    if (owner->has_value()) return std::optional<std::string>(std::string(user_id.substr(0, n)));
  }
  return std::optional<std::string>{};
}

}  // namespace tsunagu::rendezvous
