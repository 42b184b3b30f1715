// Shared by the allocation fuzz targets: an input starting with 'H' is a hook
// call ("H\n", arguments one a line, a blank line, then NAME=value lines);
// anything else is a lease file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "allocation/hook_call.hpp"

namespace tsunagu::alloc::fuzz {

struct FuzzHookInput {
  std::vector<std::string_view> args, env;
  HookCall call() const { return HookCall{args, env, 1795334000}; }
};

inline FuzzHookInput split_hook_input(std::string_view text) {
  FuzzHookInput in;
  bool in_env = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() && !in_env) {
      in_env = true;
      continue;
    }
    (in_env ? in.env : in.args).push_back(line);
    if (in.args.size() > 64 || in.env.size() > 4096) break;
  }
  return in;
}

}  // namespace tsunagu::alloc::fuzz
