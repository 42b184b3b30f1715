#include "lan-agent/edge_policy.hpp"

namespace tsunagu::lanagent {
namespace {

bool any_matches(const std::vector<std::string>& patterns, std::string_view value) {
  for (const auto& p : patterns)
    if (pattern_matches(p, value)) return true;
  return false;
}

}  // namespace

bool pattern_matches(std::string_view pattern, std::string_view value) {
  if (pattern.empty() || value.empty()) return false;
  if (pattern == "*") return true;
  if (pattern.starts_with("*@") || pattern.starts_with("@")) {
    std::string_view domain = pattern.substr(pattern.find('@'));  // "@DOMAIN"
    return value.size() > domain.size() && value.ends_with(domain);
  }
  if (pattern.back() == '*') return value.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == value;
}

std::optional<std::string> check_pattern(std::string_view pattern) {
  if (pattern.empty()) return "empty pattern";
  if (pattern.size() > kMaxPatternLength) return "pattern longer than 128 bytes";
  for (char c : pattern) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "pattern with a space, control or non-ASCII character";
  }
  size_t stars = 0;
  for (char c : pattern) stars += c == '*' ? 1 : 0;
  if (stars > 1) return "at most one '*' per pattern";
  if (stars == 1 && pattern != "*" && !pattern.starts_with("*@") && pattern.back() != '*')
    return "'*' only as \"*\", \"*@DOMAIN\" or a trailing \"PREFIX*\"";
  if ((pattern == "*@" || pattern == "@")) return "\"@\" needs a domain after it";
  return std::nullopt;
}

PolicyDecision EdgePolicy::decide(std::string_view extension, std::string_view caller) const {
  for (size_t i = 0; i < config_.rules.size(); ++i) {
    const PolicyRule& rule = config_.rules[i];
    if (!any_matches(rule.extensions, extension)) continue;
    if (any_matches(rule.deny_callers, caller)) return {false, i, "caller denied by rule"};
    if (!rule.allow_callers.empty() && !any_matches(rule.allow_callers, caller))
      return {false, i, "caller not in the rule's allow list"};
    return {true, i, "allowed by rule"};
  }
  if (config_.default_allow) return {true, std::nullopt, "allowed by default"};
  return {false, std::nullopt, "refused by default"};
}

}  // namespace tsunagu::lanagent
