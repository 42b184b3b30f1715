// The one place that talks to libpq: a blocking connection (used on the
// group-commit worker thread and by the CLI), statements with bound
// parameters only, results as text. Never a string-built SQL statement: every
// value travels as a parameter (PQexecParams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"

struct pg_conn;

namespace tsunagu::cluster {

enum class PgErrc {
  connection,     // could not connect, or the connection broke (server gone, backend terminated)
  statement,      // the server refused one statement (SQLSTATE says why); the others may go on
  commit_failed,  // the turn's transaction did not commit: nothing of it was written
  schema_too_new,  // the database was migrated by a newer binary
  schema_missing,  // no schema_migrations table: run `cluster migrate`
  bad_result,     // a result of an unexpected shape (a column missing, a number unreadable)
};

struct PgError {
  PgErrc code = PgErrc::statement;
  std::string sqlstate;  // e.g. "23505"; empty when the server gave none
  std::string detail;
};
std::string_view to_string(PgErrc code);

// A text parameter or SQL NULL.
using PgParam = std::optional<std::string>;

// A result's rows, each column as text (NULL: nullopt), and the count of rows
// a write touched.
struct PgRows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  uint64_t affected = 0;

  // The text of (row, column named `name`); nullopt for NULL, a missing row or column.
  std::optional<std::string> text(size_t row, std::string_view name) const;
  std::optional<int64_t> integer(size_t row, std::string_view name) const;
  std::optional<bool> boolean(size_t row, std::string_view name) const;
};

class PgConnection {
 public:
  // `conninfo` is a libpq connection string or URI ("host=/run/x port=5432
  // dbname=tsunagu", "postgresql://node@db/tsunagu").
  static Expected<std::unique_ptr<PgConnection>, PgError> connect(const std::string& conninfo);
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  Expected<PgRows, PgError> exec(std::string_view sql, const std::vector<PgParam>& params = {});
  // Runs a script of several statements without parameters (PQexec): only
  // for the schema migrations embedded in the binary, never for values.
  Expected<void, PgError> exec_script(const char* sql);
  // Whether the connection is usable; false after the server or backend went away.
  bool healthy() const;
  // Reconnects with the same parameters (after !healthy()).
  Expected<void, PgError> reset();
  int backend_pid() const;

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

// Parses a bytea column's text form ("\x0a0b...") into bytes; nullopt when malformed.
std::optional<std::string> decode_bytea_hex(std::string_view text);
// Bytes as a bytea parameter's text form ("\x0a0b...").
std::string encode_bytea_hex(ByteView bytes);
// The text form of a one-dimensional text[] ("{a,"b c"}") and back; nullopt when malformed.
std::string encode_text_array(const std::vector<std::string>& items);
std::optional<std::vector<std::string>> decode_text_array(std::string_view text);

}  // namespace tsunagu::cluster
