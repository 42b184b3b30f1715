// Enrolled LAN agents and the routes they may claim (an enterprise domain like
// "acme", or a phone-number prefix), durable in LMDB beside the accounts.
// Written by `tsunagu-rendezvous agent enroll`, read by the node when an agent
// says hello, so a new enrolment needs no restart.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

struct AgentEnrollment {
  std::string name;  // the agent certificate's common name
  std::vector<std::string> domains;
  std::vector<std::string> number_prefixes;
  uint64_t enrolled_at = 0;

  friend bool operator==(const AgentEnrollment&, const AgentEnrollment&) = default;
};

std::string encode_enrollment(const AgentEnrollment& enrollment);
std::optional<AgentEnrollment> decode_enrollment(std::string_view text);

// Domains: same characters as the domain part of a user ID. Prefixes: '+',
// digits and '-', 2..32 bytes.
bool valid_domain(std::string_view domain);
bool valid_number_prefix(std::string_view prefix);
bool valid_agent_name(std::string_view name);

class AgentRegistry {
 public:
  using StoreError = storage::StoreError;
  static Expected<AgentRegistry, StoreError> open(storage::Environment& env);

  // Fails with the conflicting route's owner when a domain or prefix already
  // belongs to another agent; re-enrolling the same name replaces its routes.
  Expected<std::optional<std::string>, StoreError> enroll(storage::Transaction& txn, const AgentEnrollment& enrollment);
  Expected<bool, StoreError> remove(storage::Transaction& txn, std::string_view name);
  Expected<std::optional<AgentEnrollment>, StoreError> find(storage::Transaction& txn, std::string_view name);
  Expected<std::vector<AgentEnrollment>, StoreError> list(storage::Transaction& txn);
  // The agent a domain or a number prefix is routed to.
  Expected<std::optional<std::string>, StoreError> domain_owner(storage::Transaction& txn, std::string_view domain);
  Expected<std::optional<std::string>, StoreError> prefix_owner(storage::Transaction& txn, std::string_view prefix);
  // The enrolled route a user ID falls in: the domain of ID@DOMAIN, or the
  // longest enrolled prefix of a +NUMBER (an ID with '@' is judged by its
  // domain only). Such an ID belongs to that route's agent and is never an
  // account (docs/security.md, "Identities").
  Expected<std::optional<std::string>, StoreError> route_of(storage::Transaction& txn, std::string_view user_id);

 private:
  storage::DatabaseHandle agents_ = 0;
  storage::DatabaseHandle routes_ = 0;  // "d:<domain>" or "p:<prefix>" -> agent name
};

}  // namespace tsunagu::rendezvous
