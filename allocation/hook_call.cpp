#include "allocation/hook_call.hpp"

namespace tsunagu::alloc {

std::optional<std::string_view> HookCall::find_env(std::string_view name) const {
  for (std::string_view entry : env) {
    if (entry.size() > name.size() && entry[name.size()] == '=' && entry.substr(0, name.size()) == name)
      return entry.substr(name.size() + 1);
  }
  return std::nullopt;
}

Expected<void, ParseError> HookCall::check_limits() const {
  if (args.size() > kMaxHookArgs) return Unexpected(ParseError{ParseErrc::too_large, "too many hook arguments", 0});
  if (env.size() > kMaxHookEnvEntries)
    return Unexpected(ParseError{ParseErrc::too_large, "too many environment variables", 0});
  size_t total = 0;
  for (auto list : {args, env}) {
    for (std::string_view s : list) {
      if (s.size() > kMaxHookFieldLength)
        return Unexpected(ParseError{ParseErrc::too_large, "hook argument or variable over 4 KiB", 0});
      total += s.size();
    }
  }
  if (total > kMaxHookTotalBytes) return Unexpected(ParseError{ParseErrc::too_large, "hook input over 256 KiB", 0});
  return {};
}

}  // namespace tsunagu::alloc
