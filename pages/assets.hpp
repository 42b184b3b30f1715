#pragma once
// The node's web pages, built into the binary (pages/embed_assets.py generates
// their bodies from the files in pages/ at build time; nothing is read from disk
// at run time, so the pages always match the node that serves them).

#include <span>
#include <string_view>

namespace tsunagu::pages {

struct Asset {
  std::string_view path;          // "/index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// The asset served at `path` ("/" is "/index.html"; a query string is not part of
// the path), or nullptr.
const Asset* find_asset(std::string_view path);

// Every asset, sorted by path.
std::span<const Asset> all_assets();

}  // namespace tsunagu::pages
