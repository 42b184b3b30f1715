#include "cluster/pg/pg_agent_admin.hpp"

namespace tsunagu::cluster {

namespace {

enum class Transaction { own, callers };

// Runs the one operation `queue` puts on a turn, in a transaction of its own
// or inside the one the caller has begun (its locks held, its COMMIT the
// caller's).
template <class T, class Queue>
Expected<T, PgError> run_one(PgConnection& connection, Queue queue, Transaction transaction = Transaction::own) {
  PgTurn turn;
  std::optional<Expected<T, PgError>> answer;
  queue(turn, [&answer](Expected<T, PgError> result) { answer.emplace(std::move(result)); });
  if (transaction == Transaction::own) {
    run_turn(connection, turn);
  } else {
    for (auto& statement : turn.take()) statement.done(connection.exec(statement.sql, statement.params));
  }
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
  auto answer = run_one<PgEnrolment>(
      connection, [&](PgTurn& turn, PgDone<PgEnrolment> done) { agents.enroll(turn, enrollment, std::move(done)); },
      Transaction::callers);
  if (!answer) return failed(answer.error().detail);
  if (answer->outcome != PgEnrolment::Outcome::enrolled) {
    (void)connection.exec("ROLLBACK");
    return std::move(*answer);
  }
  if (auto done = before_commit(); !done) {
    (void)connection.exec("ROLLBACK");
    return Unexpected(done.error());
  }
  if (auto committed = connection.exec("COMMIT"); !committed) return Unexpected("PostgreSQL: " + committed.error().detail);
  return std::move(*answer);
}

Expected<std::optional<uint64_t>, PgError> pg_remove_agent(PgConnection& connection, std::string_view name) {
  auto failed = [&](PgError error) -> Expected<std::optional<uint64_t>, PgError> {
    (void)connection.exec("ROLLBACK");
    return Unexpected(std::move(error));
  };
  if (auto begun = connection.exec("BEGIN"); !begun) return Unexpected(begun.error());
  // As agent_enroll() locks it: an enrolment of this agent committing while
  // the removal reads its routes would leave mail inside a route it added.
  if (auto locked = connection.exec("LOCK TABLE agent_routes IN SHARE ROW EXCLUSIVE MODE"); !locked)
    return failed(locked.error());
  PgAgentStore agents;
  auto removed = run_one<std::optional<uint64_t>>(
      connection, [&](PgTurn& turn, PgDone<std::optional<uint64_t>> done) { agents.remove(turn, name, std::move(done)); },
      Transaction::callers);
  if (!removed) return failed(removed.error());
  if (auto committed = connection.exec("COMMIT"); !committed) return Unexpected(committed.error());
  return *removed;
}

Expected<std::vector<rendezvous::AgentEnrollment>, PgError> pg_list_agents(PgConnection& connection) {
  PgAgentStore agents;
  return run_one<std::vector<rendezvous::AgentEnrollment>>(
      connection, [&](PgTurn& turn, PgDone<std::vector<rendezvous::AgentEnrollment>> done) {
        agents.list(turn, std::move(done));
      });
}

}  // namespace tsunagu::cluster
