// The agent's pure-ish core: answers the node's forwarded lookups from the
// allocation table under the edge policy, and builds/reads the agent_hello
// exchange. No sockets, no clock (now is passed in), no logging: the daemon
// logs what the returned outcomes say.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "allocation/allocation_table.hpp"
#include "base/bytes.hpp"
#include "lan-agent/edge_policy.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::lanagent {

inline constexpr char kPolicyRefusedReason[] = "Forbidden: this extension cannot be reached from outside";
inline constexpr size_t kMaxExtensionDigits = 32;

struct AgentIdentity {
  std::string name;
  std::vector<std::string> domains;
  std::vector<std::string> number_prefixes;
};

// What a forwarded lookup found.
struct LookupAnswer {
  uint16_t error = 0;  // 0: success; else 400, 403, 404, 426, 481, 500
  std::string reason;  // error reason text
  std::string extension;
  std::vector<proto::SocketAddress> addresses;  // live leases (v4 and v6), port 0
  uint64_t expires = 0;                         // latest expiry; 0 = infinite
  std::string log_detail;                       // for the daemon's log (never sent)
};

enum class HelloStatus {
  accepted,         // linked; AGENT-NAME tells the name the node knows us by
  not_enrolled,     // 403: a claimed domain/prefix is not enrolled for this certificate
  domain_held,      // 409: another connected agent holds a domain
  bad_version,      // 426
  other,            // anything else (retry with backoff)
};

struct HelloResult {
  HelloStatus status = HelloStatus::other;
  uint16_t code = 0;
  std::string reason;
  std::string agent_name;
};

// How the agent answered the node's forwarded lookups, for the metrics
// (agent_metrics.hpp).
enum class AnswerResult : uint8_t { found, not_found, refused, no_live_lease, bad_request, error };
inline constexpr size_t kAnswerResultCount = static_cast<size_t>(AnswerResult::error) + 1;
std::string_view to_string(AnswerResult result);

class AgentCore {
 public:
  AgentCore(alloc::AllocationTable& table, AgentIdentity identity, EdgePolicy policy)
      : table_(&table), identity_(std::move(identity)), policy_(std::move(policy)) {}

  // The extension a dialled ID means, or nullopt when it is not ours:
  //   "EXT@DOMAIN" with DOMAIN one of ours -> "EXT" (the local part, as is);
  //   a number starting with one of our prefixes -> the digits after the
  //   prefix. '-', '.' and ' ' are ignored on both sides when comparing; the
  //   longest matching prefix wins; the rest must be 1-32 digits.
  std::optional<std::string> extension_for(std::string_view user_id) const;

  LookupAnswer lookup(std::string_view user_id, std::string_view caller, int64_t now);
  // A forwarded_lookup request -> the encoded response (same transaction ID,
  // PROTOCOL-VERSION in every response). Other requests get 400.
  Bytes respond(const proto::Message& request, int64_t now, LookupAnswer* answer_out = nullptr);

  // Adds DOMAIN / NUMBER-PREFIX attributes (PROTOCOL-VERSION is the sender's).
  void fill_hello(proto::MessageBuilder& builder) const;
  static HelloResult read_hello_response(const proto::Message& response);

  const AgentIdentity& identity() const { return identity_; }
  alloc::AllocationTable& table() { return *table_; }
  const EdgePolicy& policy() const { return policy_; }
  void set_policy(EdgePolicy policy) { policy_ = std::move(policy); }  // a reload
  // respond()'s answers so far, by result.
  const std::array<uint64_t, kAnswerResultCount>& answers() const { return answers_; }

 private:
  // What a lookup needs of an extension's table entries: whether it is bound,
  // and its active leases (each live until its live_until, unless a write
  // ends it, and a write makes a new snapshot).
  struct BoundLeases {
    struct Lease {
      proto::SocketAddress address;
      int64_t expires = 0, live_until = 0;
    };
    bool bound = false;
    std::vector<Lease> leases;
  };
  // Beyond this many extensions read in one snapshot the cache is emptied
  // and fills again: it stays bounded, and every lookup is still answered.
  static constexpr size_t kMaxCachedExtensions = 4096;

  // The extension's entries, read from the table, or from what an earlier
  // lookup read under the same held snapshot (AllocationTable::hold_reads):
  // at saturation every lookup of a loop turn, and of the turns after it
  // until the table changes, skips the LMDB reads and the record decodes.
  Expected<const BoundLeases*, alloc::TableError> bound_leases(const std::string& extension, int64_t now);

  alloc::AllocationTable* table_;
  AgentIdentity identity_;
  EdgePolicy policy_;
  std::array<uint64_t, kAnswerResultCount> answers_{};
  std::unordered_map<std::string, BoundLeases> cached_;
  uint64_t cached_snapshot_ = 0;
  BoundLeases uncached_;  // a lookup's entries read without a held snapshot
};

}  // namespace tsunagu::lanagent
