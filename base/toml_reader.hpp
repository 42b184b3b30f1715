// Typed, checked reads from a parsed TOML file, shared by node.toml and
// agent.toml: every error names the file, the key and what is wrong, unknown
// sections and keys are errors, strings and lists have size limits.
// Configuration is read only at start-up, so errors are thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <toml++/toml.h>
#include <vector>

namespace tsunagu {

class ConfigFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Section name -> the keys it may hold.
using KnownSettings = std::vector<std::pair<std::string_view, std::vector<std::string_view>>>;

class TomlReader {
 public:
  TomlReader(const toml::table& root, std::string file) : root_(root), file_(std::move(file)) {}

  [[noreturn]] void fail(std::string_view key, std::string_view what) const;
  bool has(std::string_view key) const;

  std::string text(std::string_view key, std::string fallback, size_t max = 4096) const;
  int64_t integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::vector<std::string> strings(std::string_view key, std::vector<std::string> fallback,
                                   size_t max_items = 1024) const;
  // A list of strings held by `node` (an entry of an array of tables, say);
  // `key` names it in errors.
  std::vector<std::string> strings_of(const toml::node* node, std::string_view key, size_t max_items) const;
  // Every top-level entry must be a known section, every key in it known.
  void reject_unknown(const KnownSettings& known) const;

 private:
  const toml::table& root_;
  std::string file_;
};

// `path` taken relative to `directory` unless it is absolute or empty.
std::string resolve_config_path(const std::string& directory, const std::string& path);

}  // namespace tsunagu
