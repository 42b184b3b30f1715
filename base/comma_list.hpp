// A list as one value, items comma-separated ("a,b"): the audit lines' list
// fields (restart_needed=, domains=).
#pragma once

#include <string>
#include <vector>

namespace tsunagu {

inline std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace tsunagu
