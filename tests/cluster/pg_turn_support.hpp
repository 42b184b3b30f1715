// What the doctest suites of the node's PostgreSQL stores share beside
// pg_test_support.hpp: the first value of a query, and a turn of the account
// directory committed with the loop run until its answer is in.
#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <optional>
#include <string>

#include "cluster/pg/pg_account_directory.hpp"

namespace tsunagu::test {

// The first column of the first row, as text ("NULL" for NULL).
inline std::string first_text(cluster::PgConnection& connection, const std::string& sql) {
  auto rows = connection.exec(sql);
  REQUIRE_MESSAGE(rows, (rows ? "" : rows.error().detail));
  REQUIRE(!rows->rows.empty());
  return rows->text(0, rows->columns.at(0)).value_or("NULL");
}

// Seals the directory's turn and runs the loop until its answer is in: the
// error it answered with, nullopt when it committed.
inline std::optional<storage::StoreError> commit_and_wait(uv_loop_t* loop, cluster::PgAccountDirectory& directory) {
  bool answered = false;
  std::optional<storage::StoreError> outcome;
  directory.commit_turn([&](std::optional<storage::StoreError> error) {
    answered = true;
    outcome = std::move(error);
  });
  for (int turns = 0; !answered && turns < 10'000; ++turns) uv_run(loop, UV_RUN_ONCE);
  REQUIRE(answered);
  return outcome;
}

}  // namespace tsunagu::test
