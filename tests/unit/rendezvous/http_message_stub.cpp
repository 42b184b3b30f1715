// TEMPORARY: the three web/http_message.hpp functions the web API uses, until
// web/http_message.cpp (being written beside this, issue 14) lands. When it
// does, link the web library instead and delete this file (tests/unit/
// rendezvous/meson.build and tests/fuzz/rendezvous/meson.build name it).
#include <algorithm>
#include <cctype>

#include "web/http_message.hpp"

namespace tsunagu::web {

const std::string* Headers::find(std::string_view name) const {
  for (const auto& [key, value] : entries)
    if (std::equal(key.begin(), key.end(), name.begin(), name.end(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); }))
      return &value;
  return nullptr;
}

void Headers::add(std::string name, std::string value) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  entries.emplace_back(std::move(name), std::move(value));
}

const std::string* HttpRequest::query_value(std::string_view name) const {
  for (const auto& [key, value] : query)
    if (key == name) return &value;
  return nullptr;
}

}  // namespace tsunagu::web
