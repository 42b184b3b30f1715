// What one table operation changed, so the agent can report it. Nothing is
// returned for an event that changed nothing (a repeat, a stale event).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/extension_binding.hpp"
#include "allocation/lease_record.hpp"

namespace tsunagu::alloc {

enum class ChangeKind : uint8_t {
  lease_granted = 1,  // a new lease, or one that was ended is live again
  lease_renewed = 2,  // same address, later expiry or new hostname
  lease_moved = 3,    // same client, new address (previous_address)
  lease_ended = 4,    // released, declined, removed, expired by the server, or absent from the lease file
  lease_expired = 5,  // expire_stale found it past its expiry
  lease_purged = 6,   // an ended record older than the retention was deleted
  binding_set = 7,
  binding_learned = 8,
  binding_removed = 9,
  binding_conflict = 10,  // a hostname claimed an extension bound to another client (lease: the claimant's)
};

std::string_view to_string(ChangeKind kind);

struct TableChange {
  ChangeKind kind = ChangeKind::lease_granted;
  std::string extension;  // the extension bound to the lease's client, or empty
  std::optional<LeaseRecord> lease;                    // lease changes: the record after
  std::optional<proto::SocketAddress> previous_address;  // lease_moved
  std::optional<ExtensionBinding> binding;             // binding changes
};

}  // namespace tsunagu::alloc
