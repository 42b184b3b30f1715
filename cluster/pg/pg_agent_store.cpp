#include "cluster/pg/pg_agent_store.hpp"

#include <algorithm>

namespace tsunagu::cluster {

namespace {

using rendezvous::AgentEnrollment;

PgError bad_row(std::string_view what) { return PgError{PgErrc::bad_result, "", "unreadable row: " + std::string(what)}; }

// The `agent` column of the first row, if any.
Expected<std::optional<std::string>, PgError> owner_of(const PgRows& rows) {
  if (rows.rows.empty()) return std::optional<std::string>{};
  auto agent = rows.text(0, "agent");
  if (!agent) return Unexpected(bad_row("agent"));
  return std::optional<std::string>(std::move(*agent));
}

// Rows of (name, enrolled_at, routes text[]) as enrolments.
Expected<std::vector<AgentEnrollment>, PgError> enrolments_of(const PgRows& rows) {
  std::vector<AgentEnrollment> out;
  for (size_t row = 0; row < rows.rows.size(); ++row) {
    auto name = rows.text(row, "name");
    auto enrolled_at = rows.integer(row, "enrolled_at");
    auto routes = decode_text_array(rows.text(row, "routes").value_or("{}"));
    if (!name || !enrolled_at || *enrolled_at < 0 || !routes) return Unexpected(bad_row("agents"));
    AgentEnrollment e{*name, {}, {}, static_cast<uint64_t>(*enrolled_at)};
    for (const auto& route : *routes) {
      if (route.starts_with("d:")) e.domains.push_back(route.substr(2));
      else if (route.starts_with("p:")) e.number_prefixes.push_back(route.substr(2));
    }
    out.push_back(std::move(e));
  }
  return out;
}

constexpr const char* enrolments_query =
    "SELECT a.name, a.enrolled_at, coalesce(array_agg(r.route ORDER BY r.route) FILTER (WHERE r.route IS NOT NULL), "
    "'{}') AS routes FROM agents a LEFT JOIN agent_routes r ON r.agent = a.name ";

}  // namespace

void PgAgentStore::enroll(PgTurn& turn, const AgentEnrollment& e, PgDone<PgEnrolment> done) {
  std::vector<std::string> routes;
  for (const auto& d : e.domains) routes.push_back("d:" + d);
  for (const auto& p : e.number_prefixes) routes.push_back("p:" + p);
  queue_statement<PgEnrolment>(
      turn, "SELECT outcome, route, owner, ids FROM agent_enroll($1::text, $2::bigint, $3::text[])",
      {e.name, std::to_string(e.enrolled_at), encode_text_array(routes)}, std::move(done),
      [](const PgRows& rows) -> Expected<PgEnrolment, PgError> {
        auto outcome = rows.text(0, "outcome");
        if (!outcome) return Unexpected(bad_row("agent_enroll"));
        PgEnrolment result;
        std::string route = rows.text(0, "route").value_or("");
        result.route = route.size() > 2 ? route.substr(2) : route;
        result.owner = rows.text(0, "owner").value_or("");
        result.ids = decode_text_array(rows.text(0, "ids").value_or("{}")).value_or(std::vector<std::string>{});
        if (*outcome == "enrolled") result.outcome = PgEnrolment::Outcome::enrolled;
        else if (*outcome == "route_taken") result.outcome = PgEnrolment::Outcome::route_taken;
        else if (*outcome == "accounts_inside") result.outcome = PgEnrolment::Outcome::accounts_inside;
        else return Unexpected(bad_row("agent_enroll outcome " + *outcome));
        return result;
      });
}

void PgAgentStore::remove(PgTurn& turn, std::string_view name, PgDone<std::optional<uint64_t>> done) {
  // One statement, so a turn retried without a refused statement repeats
  // nothing half-done. agent_routes' rows go by ON DELETE CASCADE, the
  // recordings (voicemail_data) likewise; "inside" is VoicemailStore's
  // remove_mailboxes_inside and agent_enroll's test.
  queue_statement<std::optional<uint64_t>>(
      turn,
      "WITH routes AS (SELECT route FROM agent_routes WHERE agent = $1), "
      "gone AS (DELETE FROM agents WHERE name = $1 RETURNING name), "
      "mail AS (DELETE FROM voicemail v USING routes r WHERE EXISTS (SELECT 1 FROM gone) AND ("
      "(r.route LIKE 'd:%' AND right(v.recipient, length(r.route) - 1) = '@' || substr(r.route, 3)) OR "
      "(r.route LIKE 'p:%' AND starts_with(v.recipient, substr(r.route, 3)) AND strpos(v.recipient, '@') = 0)) "
      "RETURNING v.id) "
      "SELECT (SELECT count(*) FROM gone) AS agents, (SELECT count(*) FROM mail) AS messages",
      {std::string(name)}, std::move(done), [](const PgRows& rows) -> Expected<std::optional<uint64_t>, PgError> {
        auto agents = rows.integer(0, "agents");
        auto messages = rows.integer(0, "messages");
        if (!agents || !messages || *messages < 0) return Unexpected(bad_row("agent removal"));
        if (*agents == 0) return std::optional<uint64_t>{};
        return std::optional<uint64_t>(static_cast<uint64_t>(*messages));
      });
}

void PgAgentStore::find(PgTurn& turn, std::string_view name, PgDone<std::optional<AgentEnrollment>> done) {
  queue_statement<std::optional<AgentEnrollment>>(
      turn, std::string(enrolments_query) + "WHERE a.name = $1 GROUP BY a.name, a.enrolled_at", {std::string(name)},
      std::move(done), [](const PgRows& rows) -> Expected<std::optional<AgentEnrollment>, PgError> {
        auto all = enrolments_of(rows);
        if (!all) return Unexpected(all.error());
        if (all->empty()) return std::optional<AgentEnrollment>{};
        return std::optional<AgentEnrollment>(std::move(all->front()));
      });
}

void PgAgentStore::list(PgTurn& turn, PgDone<std::vector<AgentEnrollment>> done) {
  queue_statement<std::vector<AgentEnrollment>>(
      turn, std::string(enrolments_query) + "GROUP BY a.name, a.enrolled_at ORDER BY a.name COLLATE \"C\"", {},
      std::move(done), enrolments_of);
}

void PgAgentStore::domain_owner(PgTurn& turn, std::string_view domain, PgDone<std::optional<std::string>> done) {
  queue_statement<std::optional<std::string>>(turn, "SELECT agent FROM agent_routes WHERE route = $1",
                                              {"d:" + std::string(domain)}, std::move(done), owner_of);
}

void PgAgentStore::prefix_owner(PgTurn& turn, std::string_view prefix, PgDone<std::optional<std::string>> done) {
  queue_statement<std::optional<std::string>>(turn, "SELECT agent FROM agent_routes WHERE route = $1",
                                              {"p:" + std::string(prefix)}, std::move(done), owner_of);
}

void PgAgentStore::route_of(PgTurn& turn, std::string_view user_id, PgDone<std::optional<std::string>> done) {
  if (auto at = user_id.find('@'); at != std::string_view::npos) {
    std::string domain(user_id.substr(at + 1));
    queue_statement<std::optional<std::string>>(
        turn, "SELECT agent FROM agent_routes WHERE route = $1", {"d:" + domain}, std::move(done),
        [domain](const PgRows& rows) -> Expected<std::optional<std::string>, PgError> {
          return rows.rows.empty() ? std::optional<std::string>{} : std::optional<std::string>(domain);
        });
    return;
  }
  if (!user_id.starts_with('+')) return done(std::optional<std::string>{});
  // Every prefix of the number an enrolment could hold (2 to 32 bytes), so
  // the primary key answers; the longest enrolled one wins.
  std::vector<std::string> candidates;
  for (size_t n = std::min<size_t>(user_id.size(), 32); n >= 2; --n) candidates.push_back("p:" + std::string(user_id.substr(0, n)));
  queue_statement<std::optional<std::string>>(
      turn, "SELECT route FROM agent_routes WHERE route = ANY ($1::text[]) ORDER BY length(route) DESC LIMIT 1",
      {encode_text_array(candidates)}, std::move(done),
      [](const PgRows& rows) -> Expected<std::optional<std::string>, PgError> {
        if (rows.rows.empty()) return std::optional<std::string>{};
        auto route = rows.text(0, "route");
        if (!route || route->size() < 3) return Unexpected(bad_row("route"));
        return std::optional<std::string>(route->substr(2));
      });
}

}  // namespace tsunagu::cluster
