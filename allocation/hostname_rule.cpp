#include "allocation/hostname_rule.hpp"

#include "proto/signalling.hpp"

namespace tsunagu::alloc {

Expected<HostnameRule, ParseError> HostnameRule::parse(std::string_view pattern) {
  auto fail = [](std::string detail) { return Unexpected(ParseError{ParseErrc::bad_pattern, std::move(detail), 0}); };
  if (pattern.size() > 128) return fail("pattern over 128 characters");
  size_t ext = pattern.find("{ext}"), id = pattern.find("{id}");
  if ((ext == std::string_view::npos) == (id == std::string_view::npos))
    return fail("pattern needs exactly one {ext} or {id}");
  HostnameRule rule;
  rule.digits_only_ = ext != std::string_view::npos;
  size_t at = rule.digits_only_ ? ext : id, len = rule.digits_only_ ? 5 : 4;
  std::string_view rest = pattern.substr(at + len);
  if (rest.find('{') != std::string_view::npos || pattern.substr(0, at).find('{') != std::string_view::npos)
    return fail("pattern needs exactly one {ext} or {id}");
  for (char c : pattern) {
    if (c >= 'A' && c <= 'Z') return fail("pattern must be lowercase");
  }
  rule.pattern_ = std::string(pattern);
  rule.prefix_ = std::string(pattern.substr(0, at));
  rule.suffix_ = std::string(rest);
  return rule;
}

std::optional<std::string> HostnameRule::extension_for(std::string_view hostname) const {
  if (hostname.size() <= prefix_.size() + suffix_.size()) return std::nullopt;
  if (hostname.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  if (hostname.substr(hostname.size() - suffix_.size()) != suffix_) return std::nullopt;
  std::string_view middle = hostname.substr(prefix_.size(), hostname.size() - prefix_.size() - suffix_.size());
  if (middle.size() > (digits_only_ ? 32u : 64u)) return std::nullopt;
  for (char c : middle) {
    bool digit = c >= '0' && c <= '9';
    bool ok = digits_only_ ? digit : (digit || (c >= 'a' && c <= 'z') || c == '_' || c == '-');
    if (!ok) return std::nullopt;
  }
  // An extension is reached as EXT@DOMAIN and named in `bind`, `unbind` and
  // `show`, which take only a user ID's local part ("-" or "_x" from a host's
  // "-.phones" would be a binding no caller can reach and no admin can remove).
  if (!proto::valid_user_id(middle)) return std::nullopt;
  return std::string(middle);
}

}  // namespace tsunagu::alloc
