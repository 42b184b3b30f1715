// A client that claimed, by its DHCP hostname, an extension bound to another
// client. A hostname never moves a binding (a LAN host sending `ext-4106`
// would take 4106's calls); the claim is kept here for the admin, who binds
// the new client with `tsunagu-lan-agent bind EXT CLIENT` (or a pin) if the
// terminal was really replaced. At most kMaxConflictsPerExtension are kept per
// extension; `attempts` counts the claims of one client.
#pragma once

#include <cstdint>
#include <string>

#include "allocation/client_ref.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::alloc {

inline constexpr size_t kMaxConflictsPerExtension = 8;

struct BindingConflict {
  std::string extension;
  ClientRef claimant;            // the client that sent the hostname
  std::string hostname;
  proto::SocketAddress address;  // its lease's address when it last claimed
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  uint64_t attempts = 0;
};

}  // namespace tsunagu::alloc
