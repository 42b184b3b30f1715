#include "cluster/pg/pg_turn.hpp"

#include <uv.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace tsunagu::cluster {

namespace {

PgError turn_failed(const PgError& cause) {
  return PgError{PgErrc::commit_failed, cause.sqlstate, "the turn's transaction did not commit: " + cause.detail};
}

void fail_all(PgTurnOutcome& outcome, const std::set<size_t>& refused, const PgError& cause) {
  PgError error = turn_failed(cause);
  for (size_t i = 0; i < outcome.results.size(); ++i)
    if (!refused.contains(i)) outcome.results[i] = Unexpected(error);
}

}  // namespace

PgTurnOutcome execute_turn(PgConnection& connection, const std::vector<PgStatement>& statements) {
  PgTurnOutcome outcome;
  outcome.results.assign(statements.size(), PgResult(Unexpected(PgError{PgErrc::commit_failed, "", "not run"})));
  if (statements.empty()) {
    outcome.committed = true;
    return outcome;
  }
  std::set<size_t> refused;  // statements the server refused on their own; left out of the next attempt
  if (!connection.healthy()) {
    if (auto reset = connection.reset(); !reset) {
      fail_all(outcome, refused, reset.error());
      return outcome;
    }
  }
  while (refused.size() < statements.size()) {
    ++outcome.attempts;
    if (auto begun = connection.exec("BEGIN"); !begun) {
      fail_all(outcome, refused, begun.error());
      return outcome;
    }
    bool retry = false;
    for (size_t i = 0; i < statements.size() && !retry; ++i) {
      if (refused.contains(i)) continue;
      auto result = connection.exec(statements[i].sql, statements[i].params);
      if (result) {
        outcome.results[i] = std::move(result);
        continue;
      }
      if (result.error().code != PgErrc::statement) {
        fail_all(outcome, refused, result.error());
        return outcome;
      }
      outcome.results[i] = std::move(result);
      refused.insert(i);
      retry = true;
    }
    if (retry) {
      if (auto rolled_back = connection.exec("ROLLBACK"); !rolled_back) {
        fail_all(outcome, refused, rolled_back.error());
        return outcome;
      }
      continue;
    }
    // A broken connection during COMMIT leaves the outcome unknown to us; it
    // is reported as failed (503: the client retries, and every write the
    // node makes is safe to repeat or checked by a unique key).
    if (auto committed = connection.exec("COMMIT"); !committed) {
      fail_all(outcome, refused, committed.error());
      return outcome;
    }
    outcome.committed = true;
    return outcome;
  }
  outcome.committed = true;  // every statement was refused: nothing to commit
  return outcome;
}

void deliver(std::vector<PgStatement>& statements, PgTurnOutcome& outcome) {
  for (size_t i = 0; i < statements.size(); ++i)
    if (statements[i].done) statements[i].done(std::move(outcome.results[i]));
}

bool run_turn(PgConnection& connection, PgTurn& turn) {
  auto statements = turn.take();
  auto outcome = execute_turn(connection, statements);
  deliver(statements, outcome);
  return outcome.committed;
}

struct PgGroupCommitter::Shared {
  std::mutex mutex;
  std::condition_variable wake;
  std::unique_ptr<PgConnection> connection;
  const std::vector<PgStatement>* batch = nullptr;  // set by the loop; read by the worker until result_ready
  PgTurnOutcome outcome;
  bool result_ready = false;
  bool stop = false;
  std::thread worker;
  uv_prepare_t* prepare = nullptr;
  uv_async_t* async = nullptr;
};

Expected<std::unique_ptr<PgGroupCommitter>, PgError> PgGroupCommitter::start(uv_loop_s* loop,
                                                                             const std::string& conninfo) {
  auto connection = PgConnection::connect(conninfo);
  if (!connection) return Unexpected(connection.error());
  std::unique_ptr<PgGroupCommitter> committer(new PgGroupCommitter());
  committer->loop_ = loop;
  auto shared = std::make_shared<Shared>();
  shared->connection = std::move(*connection);
  committer->shared_ = shared;

  shared->prepare = new uv_prepare_t;
  uv_prepare_init(loop, shared->prepare);
  shared->prepare->data = committer.get();
  uv_prepare_start(shared->prepare, [](uv_prepare_t* handle) {
    static_cast<PgGroupCommitter*>(handle->data)->dispatch();
  });
  // The prepare handle keeps the loop alive until close(), so a statement
  // queued in any callback is sent; the async handle adds nothing to that.
  shared->async = new uv_async_t;
  uv_async_init(loop, shared->async, [](uv_async_t* handle) {
    static_cast<PgGroupCommitter*>(handle->data)->on_results();
  });
  shared->async->data = committer.get();
  uv_unref(reinterpret_cast<uv_handle_t*>(shared->async));

  shared->worker = std::thread([raw = shared.get()] {
    std::unique_lock lock(raw->mutex);
    while (true) {
      raw->wake.wait(lock, [&] { return raw->batch != nullptr || raw->stop; });
      if (raw->batch == nullptr) return;  // stop, with nothing in flight
      const auto* batch = raw->batch;
      lock.unlock();
      auto outcome = execute_turn(*raw->connection, *batch);
      lock.lock();
      raw->outcome = std::move(outcome);
      raw->batch = nullptr;
      raw->result_ready = true;
      uv_async_send(raw->async);
    }
  });
  return committer;
}

PgGroupCommitter::~PgGroupCommitter() {
  if (!closed_) close();
}

int PgGroupCommitter::backend_pid() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->connection->backend_pid();
}

void PgGroupCommitter::dispatch() {
  if (closed_ || !in_flight_.empty() || pending_.empty()) return;
  in_flight_ = pending_.take();
  {
    std::lock_guard lock(shared_->mutex);
    shared_->batch = &in_flight_;
  }
  shared_->wake.notify_one();
}

void PgGroupCommitter::on_results() {
  PgTurnOutcome outcome;
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->result_ready) return;
    outcome = std::move(shared_->outcome);
    shared_->result_ready = false;
  }
  ++(outcome.committed ? turns_committed_ : turns_failed_);
  auto statements = std::exchange(in_flight_, {});
  deliver(statements, outcome);
  dispatch();  // what was queued while the transaction was in flight
}

void PgGroupCommitter::close() {
  if (closed_) return;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stop = true;
  }
  shared_->wake.notify_one();
  if (shared_->worker.joinable()) shared_->worker.join();
  closed_ = true;
  on_results();  // a result the async callback has not delivered yet
  auto left = pending_.take();
  PgTurnOutcome refused;
  refused.results.assign(left.size(), PgResult(Unexpected(PgError{PgErrc::commit_failed, "", "the committer closed"})));
  deliver(left, refused);
  uv_close(reinterpret_cast<uv_handle_t*>(shared_->prepare),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
  uv_close(reinterpret_cast<uv_handle_t*>(shared_->async),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
}

}  // namespace tsunagu::cluster
