// `tsunagu-rendezvous agent enroll|list|remove --pg CONNINFO`: the operator's
// agent enrolments on a cluster's PostgreSQL, each one transaction, with the
// checks the LMDB ones make (a route another agent holds, accounts already
// inside a route). The agent's bundle (its certificate from the deployment
// CA) is written by the CLI as without --pg.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/pg/pg_agent_store.hpp"

namespace tsunagu::cluster {

// Enrols in one transaction; when the checks pass, `before_commit` runs
// inside it (the CLI writes the agent's bundle) and its error rolls the
// enrolment back, so no enrolment is left without its bundle.
Expected<PgEnrolment, std::string> pg_enroll_agent(PgConnection& connection, const rendezvous::AgentEnrollment& enrollment,
                                                   const std::function<Expected<void, std::string>()>& before_commit);
// nullopt when there was no such agent; else how many undelivered voicemail
// messages of its extensions (mailboxes inside its routes) were deleted with
// it, in the removal's transaction, as `agent remove` does on LMDB.
Expected<std::optional<uint64_t>, PgError> pg_remove_agent(PgConnection& connection, std::string_view name);
Expected<std::vector<rendezvous::AgentEnrollment>, PgError> pg_list_agents(PgConnection& connection);

}  // namespace tsunagu::cluster
