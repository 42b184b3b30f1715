// Test doubles shared by the call and transfer core tests: received files and
// stdout in memory (TransferOutput), with switches for the disk failures the
// real DiskOutput can meet, and helpers to pick actions out of a batch.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.hpp"
#include "terminal/cli_common.hpp"
#include "terminal/transfer_core.hpp"

namespace tsunagu::terminal::testing {

class MemoryOutput final : public TransferOutput {
 public:
  std::string stdout_bytes;
  std::map<std::string, std::string> stored;  // committed files by name
  std::string partial, partial_name;
  bool writing = false;
  int discarded = 0;
  bool refuse_open = false, fail_commit = false, fail_stdout = false;

  bool write_stdout(ByteView bytes) override {
    if (fail_stdout) return false;
    stdout_bytes.append(as_chars(bytes));
    return true;
  }
  Expected<std::string, std::string> open_file(const std::string& name) override {
    if (refuse_open || stored.count(name) != 0) return Unexpected("dir/" + name + " already exists: refusing to overwrite it");
    partial.clear();
    partial_name = name;
    writing = true;
    return "dir/" + name;
  }
  bool write_file(ByteView bytes) override {
    partial.append(as_chars(bytes));
    return writing;
  }
  bool commit_file() override {
    writing = false;
    if (fail_commit) return false;
    stored[partial_name] = partial;
    return true;
  }
  void discard_file() override {
    writing = false;
    partial.clear();
    ++discarded;
  }
};

template <class T, class Action>
std::vector<T> all_of_type(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const auto& action : actions)
    if (const auto* a = std::get_if<T>(&action)) out.push_back(*a);
  return out;
}

template <class Action>
std::string printed(const std::vector<Action>& actions) {
  std::string out;
  for (const auto& action : actions)
    if (const auto* a = std::get_if<transfer::Print>(&action)) out += a->line + "\n";
  return out;
}

inline Bytes test_secret() {
  Bytes secret(32);
  for (size_t i = 0; i < secret.size(); ++i) secret[i] = std::byte(static_cast<uint8_t>(i * 7 + 1));
  return secret;
}

}  // namespace tsunagu::terminal::testing
