// The node's blocking reads from PostgreSQL in cluster mode: one connection
// of the loop's own, in autocommit, one round trip per read, for the handlers
// that need a row in the call that answers (an account, an agent's route).
// Bounded when the server is away: a read that fails to connect or loses its
// connection marks the server down for `retry_ms`, and reads until then fail
// at once (503) without touching the network; a connection attempt waits at
// most connect_timeout seconds (added to a conninfo that names none).
// Shared by PgAccountDirectory and PgAgentDirectory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/pg/pg_turn.hpp"
#include "storage/lmdb_store.hpp"

struct uv_loop_s;

namespace tsunagu::cluster {

// A PgError as the node's storage error (503 to the client; the detail goes to the log).
storage::StoreError store_error(const PgError& error);

// `conninfo` with connect_timeout=`seconds` unless it names one (libpq waits
// for ever on a connect unless told: a node's loop must not).
std::string with_connect_timeout(const std::string& conninfo, int seconds);

class PgReader {
 public:
  static constexpr uint64_t retry_ms = 1000;
  static Expected<std::unique_ptr<PgReader>, PgError> connect(uv_loop_s* loop, const std::string& conninfo);

  PgConnection& connection() { return *connection_; }
  uint64_t now_ms() const;

  // Runs the one statement `queue` puts on a turn, on this connection. A
  // `queue` that answers at once without a statement (the route of an ID that
  // names no domain or number) is answered even while the server is down.
  template <class T>
  Expected<T, storage::StoreError> read(const std::function<void(PgTurn&, PgDone<T>)>& queue) {
    PgTurn turn;
    std::optional<Expected<T, PgError>> answer;
    queue(turn, [&answer](Expected<T, PgError> result) { answer.emplace(std::move(result)); });
    auto statements = turn.take();
    if (!statements.empty()) {
      if (auto down = check_up(); down) return Unexpected(std::move(*down));
    }
    for (auto& statement : statements) statement.done(connection_->exec(statement.sql, statement.params));
    if (!answer) return Unexpected(storage::StoreError{storage::StoreErrc::other, 0, "PostgreSQL: no answer"});
    if (!*answer) {
      note_failure(answer->error());
      return Unexpected(store_error(answer->error()));
    }
    return std::move(**answer);
  }

 private:
  PgReader() = default;
  // The error to answer with while the server is marked down or cannot be reconnected.
  std::optional<storage::StoreError> check_up();
  void note_failure(const PgError& error);

  uv_loop_s* loop_ = nullptr;
  std::unique_ptr<PgConnection> connection_;
  uint64_t down_until_ms_ = 0;
};

}  // namespace tsunagu::cluster
