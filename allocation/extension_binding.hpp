// extension/user ID -> the client it rings. Set by an admin, or learned from a
// hostname through TableOptions::hostname_rule; an admin binding is never
// replaced by a learned one. One extension per client, one client per extension.
#pragma once

#include <cstdint>
#include <string>

#include "allocation/client_ref.hpp"

namespace tsunagu::alloc {

enum class BindingOrigin : uint8_t { admin = 1, hostname_rule = 2 };

struct ExtensionBinding {
  std::string extension;
  ClientRef client;
  BindingOrigin origin = BindingOrigin::admin;
  int64_t since = 0;
  friend bool operator==(const ExtensionBinding&, const ExtensionBinding&) = default;
};

}  // namespace tsunagu::alloc
