// Loads the captured hook calls and lease files (tests run in this folder).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/hook_call.hpp"

namespace tsunagu::alloc::test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::string text = read_text(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

// One captured call: <base>.args (one argument a line) and <base>.env.
struct CapturedCall {
  std::vector<std::string> arg_storage, env_storage;
  std::vector<std::string_view> args, env;

  explicit CapturedCall(const std::string& base) {
    arg_storage = read_lines(base + ".args");
    env_storage = read_lines(base + ".env");
    for (const auto& a : arg_storage) args.push_back(a);
    for (const auto& e : env_storage) env.push_back(e);
  }
  HookCall call(int64_t now) const { return HookCall{args, env, now}; }
};

// The bases ("captured/x/calls/001-add") of every call in a server's folder.
inline std::vector<std::string> captured_calls(const std::string& server) {
  std::vector<std::string> bases;
  for (const auto& entry : std::filesystem::directory_iterator("captured/" + server + "/calls")) {
    std::string p = entry.path().string();
    if (p.size() > 5 && p.substr(p.size() - 5) == ".args") bases.push_back(p.substr(0, p.size() - 5));
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

}  // namespace tsunagu::alloc::test
