// The agent's edge policy: which extensions callers from outside the LAN may
// reach, and which callers. Pure: no I/O, no clock.
//
// Patterns (extensions and callers alike):
//   "*"          anything
//   "*@DOMAIN"   a caller ID in DOMAIN ("bob@other"); "@DOMAIN" means the same
//   "PREFIX*"    anything starting with PREFIX ("41*", "+81-*")
//   otherwise    exactly this ID or extension
// Rules are tried in order; the first rule whose `extensions` match the dialled
// extension decides: a caller matching `deny_callers` is refused; else, when
// `allow_callers` is not empty, only callers matching it are allowed; else the
// caller is allowed. When no rule matches, `default_allow` decides (the default
// lets every authenticated caller reach every bound extension).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::lanagent {

inline constexpr size_t kMaxPolicyRules = 1024;
inline constexpr size_t kMaxPolicyPatterns = 1024;  // per list
inline constexpr size_t kMaxPatternLength = 128;

struct PolicyRule {
  std::vector<std::string> extensions;
  std::vector<std::string> allow_callers;
  std::vector<std::string> deny_callers;
};

struct EdgePolicyConfig {
  bool default_allow = true;
  std::vector<PolicyRule> rules;
  // Whether a forwarded lookup's answer carries the extension's LAN address
  // (LEASE-ADDRESS). Off by default: private addresses stay inside the LAN
  // (calls need none; they are rung through the agent).
  bool show_lease_addresses = false;
};

struct PolicyDecision {
  bool allowed = true;
  std::optional<size_t> rule;  // index of the deciding rule; nullopt: the default
  std::string_view why;        // static text, for logs
};

// Does `value` match `pattern` (syntax above)?
bool pattern_matches(std::string_view pattern, std::string_view value);
// nullopt when the pattern is usable; otherwise why not.
std::optional<std::string> check_pattern(std::string_view pattern);

class EdgePolicy {
 public:
  EdgePolicy() = default;
  explicit EdgePolicy(EdgePolicyConfig config) : config_(std::move(config)) {}

  PolicyDecision decide(std::string_view extension, std::string_view caller) const;
  const EdgePolicyConfig& config() const { return config_; }

 private:
  EdgePolicyConfig config_;
};

}  // namespace tsunagu::lanagent
