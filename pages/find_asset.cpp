#include "pages/assets.hpp"

namespace tsunagu::pages {

const Asset* find_asset(std::string_view path) {
  if (path == "/") {
    path = "/index.html";
  }
  // A handful of assets: a linear scan is as fast as any index.
  for (const Asset& asset : all_assets()) {
    if (asset.path == path) {
      return &asset;
    }
  }
  return nullptr;
}

}  // namespace tsunagu::pages
