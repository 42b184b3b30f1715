// The calls a node is signalling, and the counts its limits read (calls a
// user has ringing, calls ringing from one source, calls on one link), kept
// in step with every change so that placing or ending a call costs O(1)
// rather than a scan. Pure: no sockets, no clocks (ring deadlines live in
// NodeCore's DeadlineQueue under the call ID).
//
// CallTable is the interface NodeCore uses; LocalCallTable keeps everything in
// this process's memory. In cluster mode (docs/cluster.md) a call lives on its
// callee's node, the caller being a remote link there (cluster_relay.hpp), so
// the callee's counts are whole; a caller's ringing_out counts only the calls
// it placed to users of one node, which a shared implementation of counts()
// would complete.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/stun_message.hpp"
#include "rendezvous/presence_table.hpp"

namespace tsunagu::rendezvous {

struct Call {
  std::string id;
  std::string caller, callee;
  LinkId caller_link = 0, callee_link = 0;  // callee_link 0: prepared, not rung yet
  std::string caller_source;
  uint32_t state = 0;  // proto::call_state: preparing, ringing or accepted while in the table
  proto::TransactionId ring_transaction;
  std::array<std::byte, 32> key{};
  bool via_agent = false;  // callee_link is the LAN agent of the callee's domain
  bool caller_card_holder = false;  // placed by a connection agent for a card holder: no account, no presence
  uint32_t media = 0;      // CALL-MEDIA: 1 = a reliable data stream
  uint32_t caller_profile = 0, callee_profile = 0;  // MEDIA-PROFILE of each party (proto::media_profile)
  uint8_t turn_issued_caller = 0, turn_issued_callee = 0;  // TURN credentials handed out in this call
  uint32_t early_candidates = 0;  // relayed before it was accepted (node_limits.cpp)
  uint64_t early_candidate_bytes = 0;
  uint64_t placed_ms = 0, accepted_ms = 0;  // monotonic; for the audit log's durations
  // The ICE path a party reported (call_path), as the caller sees it:
  // "LOCAL/REMOTE" candidate types; empty until one reported (node_call_path.cpp).
  std::string path;
};

struct CallCounts {
  size_t ringing_out = 0;  // calls this user placed (or prepared) that still ring
  size_t ringing_in = 0;   // calls ringing this user
  size_t accepted = 0;     // accepted calls this user is in
  friend bool operator==(const CallCounts&, const CallCounts&) = default;
};

class CallTable {
 public:
  virtual ~CallTable() = default;
  // A new call (preparing or ringing), counted; its ID must be new.
  virtual Call& insert(Call call) = 0;
  virtual Call* find(const std::string& id) = 0;
  // The prepared call rings `callee_link` now: state ringing, found by its ring transaction.
  virtual void ring(Call& call, LinkId callee_link, bool via_agent, const proto::TransactionId& ring_transaction) = 0;
  // The call rung with `ring_transaction`, while its answer is awaited.
  virtual Call* find_ring(const proto::TransactionId& ring_transaction) = 0;
  // The ring was answered: later answers to it are ignored.
  virtual void forget_ring(const proto::TransactionId& ring_transaction) = 0;
  virtual void accept(Call& call) = 0;
  // Removes the call and uncounts it.
  virtual std::optional<Call> erase(const std::string& id) = 0;
  // IDs of the calls `link` is a party of.
  virtual std::vector<std::string> calls_on(LinkId link) const = 0;
  virtual bool has_calls_on(LinkId link) const = 0;
  virtual CallCounts counts(const std::string& user) const = 0;
  virtual size_t ringing_from(const std::string& source) const = 0;
  virtual size_t size() const = 0;
  // Every call, in no order (the operator's list).
  virtual std::vector<const Call*> all() const = 0;
};

class LocalCallTable final : public CallTable {
 public:
  Call& insert(Call call) override;
  Call* find(const std::string& id) override;
  void ring(Call& call, LinkId callee_link, bool via_agent, const proto::TransactionId& ring_transaction) override;
  Call* find_ring(const proto::TransactionId& ring_transaction) override;
  void forget_ring(const proto::TransactionId& ring_transaction) override;
  void accept(Call& call) override;
  std::optional<Call> erase(const std::string& id) override;
  std::vector<std::string> calls_on(LinkId link) const override;
  bool has_calls_on(LinkId link) const override { return by_link_.contains(link); }
  CallCounts counts(const std::string& user) const override;
  size_t ringing_from(const std::string& source) const override;
  size_t size() const override { return calls_.size(); }
  std::vector<const Call*> all() const override;
  // Entries kept beside the calls, for tests: all zero counts are removed.
  size_t counted_users() const { return counts_.size(); }
  size_t counted_sources() const { return ringing_by_source_.size(); }

 private:
  // Keeps counts_, ringing_by_source_ in step with a call entering (+1) or
  // leaving (-1) its current state.
  void count(const Call& call, int delta);
  void unlink(LinkId link, const std::string& id);

  std::unordered_map<std::string, Call> calls_;
  std::unordered_map<std::string, CallCounts> counts_;
  std::unordered_map<std::string, size_t> ringing_by_source_;
  std::unordered_multimap<LinkId, std::string> by_link_;
  std::map<std::array<std::byte, 12>, std::string> rings_;  // ring transaction -> call ID
};

}  // namespace tsunagu::rendezvous
