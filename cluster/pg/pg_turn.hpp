// Group commit on PostgreSQL: the statements of one loop turn run in one
// transaction (BEGIN ... COMMIT), and each statement's result reaches its
// callback only after the COMMIT, as the LMDB node releases replies only after
// its commit. When the transaction does not commit, every statement of the turn
// gets an error (the node answers 503 for each).
//
// A statement the server refuses on its own (a constraint, a bad value) must
// not take the turn's other requests down with it: the transaction is rolled
// back, that statement gets its error, and the turn runs again without it
// (at most once per statement, so the retries are bounded).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cluster/pg/pg_connection.hpp"

struct uv_loop_s;

namespace tsunagu::cluster {

using PgResult = Expected<PgRows, PgError>;

struct PgStatement {
  std::string sql;
  std::vector<PgParam> params;
  std::function<void(PgResult)> done;
};

// The statements queued during one loop turn.
class PgTurn {
 public:
  void add(std::string sql, std::vector<PgParam> params, std::function<void(PgResult)> done) {
    statements_.push_back(PgStatement{std::move(sql), std::move(params), std::move(done)});
  }
  bool empty() const { return statements_.empty(); }
  size_t size() const { return statements_.size(); }
  std::vector<PgStatement> take() { return std::exchange(statements_, {}); }

 private:
  std::vector<PgStatement> statements_;
};

// A store operation's answer, after the turn's COMMIT.
template <class T>
using PgDone = std::function<void(Expected<T, PgError>)>;

// Queues `sql` on `turn`; after the commit, `done` gets `map(rows)` (an
// Expected<T, PgError>), or the statement's or the turn's error.
template <class T, class Map>
void queue_statement(PgTurn& turn, std::string sql, std::vector<PgParam> params, PgDone<T> done, Map map) {
  turn.add(std::move(sql), std::move(params), [done = std::move(done), map = std::move(map)](PgResult result) {
    if (!result) {
      done(Unexpected(result.error()));
      return;
    }
    done(map(*result));
  });
}

struct PgTurnOutcome {
  bool committed = false;
  unsigned attempts = 0;  // transactions begun (1 + statements refused on their own)
  std::vector<PgResult> results;  // one per statement, in order
};

// Runs `statements` in one transaction on `connection` (reconnecting first
// when it is broken) and returns each one's result; calls no callback, so a
// worker thread can run it and the loop thread deliver.
PgTurnOutcome execute_turn(PgConnection& connection, const std::vector<PgStatement>& statements);
// Hands each statement its result.
void deliver(std::vector<PgStatement>& statements, PgTurnOutcome& outcome);
// execute_turn then deliver, on the caller's thread (the CLI, tests). Returns
// whether the turn committed.
bool run_turn(PgConnection& connection, PgTurn& turn);

// The node's side: statements queued on the libuv loop during a turn are sent,
// when the loop is about to wait for I/O (uv_prepare), to one worker thread
// with its own blocking libpq connection; the results come back by uv_async
// and the callbacks run on the loop. One transaction is in flight at a time;
// what is queued meanwhile forms the next turn. (docs/cluster.md says why a
// thread rather than libpq's non-blocking mode, for now.)
class PgGroupCommitter {
 public:
  // Connects (blocking, once) and starts the worker. The committer keeps the
  // loop alive until close().
  static Expected<std::unique_ptr<PgGroupCommitter>, PgError> start(uv_loop_s* loop, const std::string& conninfo);
  PgGroupCommitter(const PgGroupCommitter&) = delete;
  PgGroupCommitter& operator=(const PgGroupCommitter&) = delete;
  // Requires close() first (and the loop run until it has closed its handles).
  ~PgGroupCommitter();

  // The current turn's queue.
  PgTurn& turn() { return pending_; }
  // Waits for the transaction in flight and delivers its results, fails what
  // is still queued (its callbacks get PgErrc::commit_failed), stops the
  // worker and closes the loop handles.
  void close();

  uint64_t turns_committed() const { return turns_committed_; }
  uint64_t turns_failed() const { return turns_failed_; }
  // The worker's backend process ID (tests terminate it to cause a failed commit).
  int backend_pid() const;

 private:
  struct Shared;
  PgGroupCommitter() = default;
  void dispatch();
  void on_results();
  uv_loop_s* loop_ = nullptr;
  PgTurn pending_;
  std::vector<PgStatement> in_flight_;
  std::shared_ptr<Shared> shared_;
  bool closed_ = false;
  uint64_t turns_committed_ = 0;
  uint64_t turns_failed_ = 0;
};

}  // namespace tsunagu::cluster
