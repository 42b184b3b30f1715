#include "cluster/pg/pg_agent_admin.hpp"

namespace tsunagu::cluster {

namespace {

// Runs the one operation `queue` puts on a turn, in its own transaction.
template <class T, class Queue>
Expected<T, PgError> run_one(PgConnection& connection, Queue queue) {
  PgTurn turn;
  std::optional<Expected<T, PgError>> answer;
  queue(turn, [&answer](Expected<T, PgError> result) { answer.emplace(std::move(result)); });
  run_turn(connection, turn);
  if (!answer) return Unexpected(PgError{PgErrc::bad_result, "", "no answer"});
  return std::move(*answer);
}

}  // namespace

Expected<PgEnrolment, std::string> pg_enroll_agent(PgConnection& connection, const rendezvous::AgentEnrollment& enrollment,
                                                   const std::function<Expected<void, std::string>()>& before_commit) {
  auto failed = [&](const std::string& why) -> Expected<PgEnrolment, std::string> {
    (void)connection.exec("ROLLBACK");
    return Unexpected("PostgreSQL: " + why);
  };
  if (auto begun = connection.exec("BEGIN"); !begun) return Unexpected("PostgreSQL: " + begun.error().detail);
  PgAgentStore agents;
  PgTurn turn;
  std::optional<Expected<PgEnrolment, PgError>> answer;
  agents.enroll(turn, enrollment, [&answer](Expected<PgEnrolment, PgError> result) { answer.emplace(std::move(result)); });
  for (auto& statement : turn.take()) statement.done(connection.exec(statement.sql, statement.params));
  if (!answer) return failed("no answer");
  if (!*answer) return failed(answer->error().detail);
  if ((*answer)->outcome != PgEnrolment::Outcome::enrolled) {
    (void)connection.exec("ROLLBACK");
    return std::move(**answer);
  }
  if (auto done = before_commit(); !done) {
    (void)connection.exec("ROLLBACK");
    return Unexpected(done.error());
  }
  if (auto committed = connection.exec("COMMIT"); !committed) return Unexpected("PostgreSQL: " + committed.error().detail);
  return std::move(**answer);
}

Expected<bool, PgError> pg_remove_agent(PgConnection& connection, std::string_view name) {
  PgAgentStore agents;
  return run_one<bool>(connection, [&](PgTurn& turn, PgDone<bool> done) { agents.remove(turn, name, std::move(done)); });
}

Expected<std::vector<rendezvous::AgentEnrollment>, PgError> pg_list_agents(PgConnection& connection) {
  PgAgentStore agents;
  return run_one<std::vector<rendezvous::AgentEnrollment>>(
      connection, [&](PgTurn& turn, PgDone<std::vector<rendezvous::AgentEnrollment>> done) {
        agents.list(turn, std::move(done));
      });
}

}  // namespace tsunagu::cluster
