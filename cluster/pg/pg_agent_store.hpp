// LAN agents' enrolments and routes in PostgreSQL (schema tables agents and
// agent_routes, the function agent_enroll of version 3): the operations of
// rendezvous::AgentRegistry, queued on a PgTurn as PgAccountStore's are, one
// statement each. Routes are stored as in LMDB: "d:<domain>", "p:<prefix>".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/pg/pg_turn.hpp"
#include "rendezvous/agent_registry.hpp"

namespace tsunagu::cluster {

// What an enrolment came to.
struct PgEnrolment {
  enum class Outcome { enrolled, route_taken, accounts_inside };
  Outcome outcome = Outcome::enrolled;
  std::string route;             // route_taken, accounts_inside: the domain or prefix (without "d:"/"p:")
  std::string owner;             // route_taken: the agent it belongs to
  std::vector<std::string> ids;  // accounts_inside: up to 21 of the accounts' IDs, in byte order
};

class PgAgentStore {
 public:
  using AgentEnrollment = rendezvous::AgentEnrollment;

  // Replaces the agent's routes with the enrolment's, checking them (PgEnrolment).
  void enroll(PgTurn& turn, const AgentEnrollment& enrollment, PgDone<PgEnrolment> done);
  // nullopt when there was no such agent. Its routes go with it, and so does
  // the voicemail of every mailbox inside them (ID@DOMAIN for a domain; a
  // +NUMBER starting with a prefix), as `agent remove` deletes it on LMDB:
  // those IDs may become accounts, which must not read it. The answer is how
  // many messages went. The routes are read in the statement's snapshot: the
  // caller locks agent_routes first (pg_remove_agent) so that no enrolment
  // commits in between.
  void remove(PgTurn& turn, std::string_view name, PgDone<std::optional<uint64_t>> done);
  void find(PgTurn& turn, std::string_view name, PgDone<std::optional<AgentEnrollment>> done);
  // Every agent, in name order; routes in byte order.
  void list(PgTurn& turn, PgDone<std::vector<AgentEnrollment>> done);
  void domain_owner(PgTurn& turn, std::string_view domain, PgDone<std::optional<std::string>> done);
  void prefix_owner(PgTurn& turn, std::string_view prefix, PgDone<std::optional<std::string>> done);
  // The enrolled route `user_id` lies in, as AgentRegistry::route_of: the
  // domain of ID@DOMAIN, or the longest enrolled prefix of a +NUMBER. An ID
  // of neither form queues nothing and gets nullopt at once.
  void route_of(PgTurn& turn, std::string_view user_id, PgDone<std::optional<std::string>> done);
};

}  // namespace tsunagu::cluster
