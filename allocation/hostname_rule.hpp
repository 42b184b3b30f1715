// Learns extension bindings from the hostnames terminals send. A pattern is
// literal text around one placeholder, no regular expressions:
//   "ext-{ext}"      ext-4106 -> extension "4106"   ({ext}: 1-32 digits)
//   "{id}.phones"    alice.phones -> "alice"        ({id}: 1-64 of [a-z0-9_-], starting
//                                                   with a letter or a digit)
// Matching is on the normalised (lowercase) hostname and the literal parts are
// compared lowercase; the whole hostname must match.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "allocation/parse_error.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

class HostnameRule {
 public:
  static Expected<HostnameRule, ParseError> parse(std::string_view pattern);
  std::optional<std::string> extension_for(std::string_view hostname) const;
  const std::string& pattern() const { return pattern_; }

 private:
  HostnameRule() = default;
  std::string pattern_, prefix_, suffix_;
  bool digits_only_ = true;
};

}  // namespace tsunagu::alloc
