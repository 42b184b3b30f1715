#include "base/toml_reader.hpp"

#include <algorithm>
#include <filesystem>

namespace tsunagu {

void TomlReader::fail(std::string_view key, std::string_view what) const {
  throw ConfigFileError(file_ + ": " + std::string(key) + ": " + std::string(what));
}

bool TomlReader::has(std::string_view key) const { return static_cast<bool>(root_.at_path(key)); }

std::string TomlReader::text(std::string_view key, std::string fallback, size_t max) const {
  auto node = root_.at_path(key);
  if (!node) return fallback;
  if (!node.is_string()) fail(key, "must be a string");
  std::string value = *node.value<std::string>();
  if (value.size() > max) fail(key, "longer than " + std::to_string(max) + " bytes");
  return value;
}

int64_t TomlReader::integer(std::string_view key, int64_t fallback, int64_t min, int64_t max) const {
  auto node = root_.at_path(key);
  if (!node) return fallback;
  if (!node.is_integer()) fail(key, "must be an integer");
  int64_t value = *node.value<int64_t>();
  if (value < min || value > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return value;
}

bool TomlReader::boolean(std::string_view key, bool fallback) const {
  auto node = root_.at_path(key);
  if (!node) return fallback;
  if (!node.is_boolean()) fail(key, "must be true or false");
  return *node.value<bool>();
}

std::vector<std::string> TomlReader::strings(std::string_view key, std::vector<std::string> fallback,
                                             size_t max_items) const {
  auto node = root_.at_path(key);
  if (!node) return fallback;
  return strings_of(node.node(), key, max_items);
}

std::vector<std::string> TomlReader::strings_of(const toml::node* node, std::string_view key, size_t max_items) const {
  const auto* array = node == nullptr ? nullptr : node->as_array();
  if (array == nullptr) fail(key, "must be a list of strings, e.g. [\"a\", \"b\"]");
  if (array->size() > max_items) fail(key, "more than " + std::to_string(max_items) + " entries");
  std::vector<std::string> out;
  for (const auto& item : *array) {
    auto value = item.value<std::string>();
    if (!item.is_string() || !value) fail(key, "must be a list of strings, e.g. [\"a\", \"b\"]");
    if (value->size() > 4096) fail(key, "an entry is longer than 4096 bytes");
    out.push_back(std::move(*value));
  }
  return out;
}

void TomlReader::reject_unknown(const KnownSettings& known) const {
  std::string names;
  for (const auto& entry : known) names += (names.empty() ? "" : ", ") + std::string(entry.first);
  for (const auto& entry_pair : root_) {
    // Named references, not structured bindings: clang 14 cannot capture those in a lambda.
    const auto& section = entry_pair.first;
    const auto& node = entry_pair.second;
    auto settings = std::find_if(known.begin(), known.end(),
                                 [&](const auto& entry) { return entry.first == section.str(); });
    if (settings == known.end()) fail(section.str(), "unknown section (known: " + names + ")");
    const auto* table = node.as_table();
    if (table == nullptr) fail(section.str(), "must be a section ([" + std::string(section.str()) + "])");
    for (const auto& key_pair : *table) {
      const auto& key = key_pair.first;
      if (std::find(settings->second.begin(), settings->second.end(), key.str()) == settings->second.end())
        fail(std::string(section.str()) + "." + std::string(key.str()), "unknown setting");
    }
  }
}

std::string resolve_config_path(const std::string& directory, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(directory) / path).lexically_normal().string();
}

}  // namespace tsunagu
