// What a DHCP server hands a hook program: its arguments (argv[1..], without the
// program name), its environment ("NAME=value" entries) and the hook's clock.
// Views only: the caller owns the strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "allocation/parse_error.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

inline constexpr size_t kMaxHookArgs = 16;
inline constexpr size_t kMaxHookEnvEntries = 1024;  // Kea passes ~50 per lease
inline constexpr size_t kMaxHookFieldLength = 4096;
inline constexpr size_t kMaxHookTotalBytes = 256 * 1024;

struct HookCall {
  std::span<const std::string_view> args;
  std::span<const std::string_view> env;
  int64_t now = 0;  // Unix seconds when the hook ran

  // The value of NAME, or nullopt (the first entry wins).
  std::optional<std::string_view> find_env(std::string_view name) const;
  // too_large when over the limits above; parsers check this first.
  Expected<void, ParseError> check_limits() const;
};

}  // namespace tsunagu::alloc
