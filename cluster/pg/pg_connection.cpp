#include "cluster/pg/pg_connection.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <cstdio>

namespace tsunagu::cluster {

namespace {

// Every array a store reads back is bounded by what it wrote (contacts,
// reported addresses); anything larger is not ours.
constexpr size_t max_text_array_items = 4096;
constexpr size_t max_text_array_bytes = 1 << 20;

std::string trimmed_message(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

PgError connection_error(pg_conn* conn, std::string_view during) {
  return PgError{PgErrc::connection, "", std::string(during) + ": " + trimmed_message(PQerrorMessage(conn))};
}

}  // namespace

std::string_view to_string(PgErrc code) {
  switch (code) {
    case PgErrc::connection: return "connection";
    case PgErrc::statement: return "statement";
    case PgErrc::commit_failed: return "commit_failed";
    case PgErrc::schema_too_new: return "schema_too_new";
    case PgErrc::schema_missing: return "schema_missing";
    case PgErrc::bad_result: return "bad_result";
  }
  return "unknown";
}

std::optional<std::string> PgRows::text(size_t row, std::string_view name) const {
  if (row >= rows.size()) return std::nullopt;
  for (size_t column = 0; column < columns.size(); ++column)
    if (columns[column] == name) return column < rows[row].size() ? rows[row][column] : std::nullopt;
  return std::nullopt;
}

std::optional<int64_t> PgRows::integer(size_t row, std::string_view name) const {
  auto value = text(row, name);
  if (!value) return std::nullopt;
  int64_t number = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), number);
  if (ec != std::errc() || end != value->data() + value->size()) return std::nullopt;
  return number;
}

std::optional<bool> PgRows::boolean(size_t row, std::string_view name) const {
  auto value = text(row, name);
  if (!value) return std::nullopt;
  if (*value == "t") return true;
  if (*value == "f") return false;
  return std::nullopt;
}

Expected<std::unique_ptr<PgConnection>, PgError> PgConnection::connect(const std::string& conninfo) {
  pg_conn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return Unexpected(PgError{PgErrc::connection, "", "out of memory"});
  if (PQstatus(conn) != CONNECTION_OK) {
    PgError error = connection_error(conn, "connect");
    PQfinish(conn);
    return Unexpected(error);
  }
  // The server's NOTICEs ("relation ... already exists, skipping") are not
  // for the operator; its WARNINGs are.
  PQsetNoticeReceiver(
      conn,
      [](void*, const PGresult* result) {
        const char* severity = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (severity != nullptr && std::string_view(severity) == "WARNING")
          std::fputs(PQresultErrorMessage(result), stderr);
      },
      nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

Expected<void, PgError> PgConnection::reset() {
  PQreset(conn_);
  if (!healthy()) return Unexpected(connection_error(conn_, "reconnect"));
  return {};
}

int PgConnection::backend_pid() const { return PQbackendPID(conn_); }

Expected<PgRows, PgError> PgConnection::exec(std::string_view sql, const std::vector<PgParam>& params) {
  std::string statement(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
  PGresult* result = PQexecParams(conn_, statement.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0);
  std::unique_ptr<PGresult, void (*)(PGresult*)> owned(result, PQclear);
  if (result == nullptr || !healthy()) return Unexpected(connection_error(conn_, "statement"));
  auto status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    PgRows rows;
    int columns = PQnfields(result);
    for (int column = 0; column < columns; ++column) rows.columns.emplace_back(PQfname(result, column));
    int count = PQntuples(result);
    rows.rows.reserve(static_cast<size_t>(count));
    for (int row = 0; row < count; ++row) {
      auto& out = rows.rows.emplace_back();
      for (int column = 0; column < columns; ++column) {
        if (PQgetisnull(result, row, column)) {
          out.emplace_back(std::nullopt);
        } else {
          out.emplace_back(std::string(PQgetvalue(result, row, column),
                                       static_cast<size_t>(PQgetlength(result, row, column))));
        }
      }
    }
    const char* affected = PQcmdTuples(result);
    if (affected != nullptr && *affected != '\0') {
      std::string_view digits(affected);
      std::from_chars(digits.data(), digits.data() + digits.size(), rows.affected);
    }
    return rows;
  }
  const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  // Class 57 (operator intervention: admin shutdown, terminated backend) and
  // 08 (connection exception) mean the session is gone, not the statement wrong.
  std::string state = sqlstate == nullptr ? "" : sqlstate;
  bool session_gone = state.rfind("57", 0) == 0 || state.rfind("08", 0) == 0;
  PgErrc code = session_gone ? PgErrc::connection : PgErrc::statement;
  return Unexpected(PgError{code, state, trimmed_message(PQresultErrorMessage(result))});
}

Expected<void, PgError> PgConnection::exec_script(const char* sql) {
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn_, sql), PQclear);
  if (result == nullptr || !healthy()) return Unexpected(connection_error(conn_, "script"));
  auto status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return {};
  const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
  return Unexpected(PgError{PgErrc::statement, sqlstate == nullptr ? "" : sqlstate,
                            trimmed_message(PQresultErrorMessage(result.get()))});
}

std::optional<std::string> decode_bytea_hex(std::string_view text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve((text.size() - 2) / 2);
  for (size_t i = 2; i < text.size(); i += 2) {
    int high = nibble(text[i]), low = nibble(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

std::string encode_bytea_hex(ByteView bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex = "\\x";
  hex.reserve(2 + bytes.size() * 2);
  for (std::byte b : bytes) {
    hex += digits[static_cast<unsigned>(b) >> 4];
    hex += digits[static_cast<unsigned>(b) & 15];
  }
  return hex;
}

std::string encode_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::optional<std::vector<std::string>> decode_text_array(std::string_view text) {
  if (text.size() < 2 || text.size() > max_text_array_bytes || text.front() != '{' || text.back() != '}')
    return std::nullopt;
  std::vector<std::string> items;
  size_t i = 1, end = text.size() - 1;
  if (i == end) return items;
  while (true) {
    if (items.size() >= max_text_array_items) return std::nullopt;
    std::string item;
    if (i < end && text[i] == '"') {
      ++i;
      while (true) {
        if (i >= end) return std::nullopt;
        char c = text[i++];
        if (c == '"') break;
        if (c == '\\') {
          if (i >= end) return std::nullopt;
          c = text[i++];
        }
        item += c;
      }
    } else {
      size_t start = i;
      while (i < end && text[i] != ',') {
        char c = text[i];
        if (c == '"' || c == '\\' || c == '{' || c == '}') return std::nullopt;
        ++i;
      }
      item.assign(text.substr(start, i - start));
      // An unquoted NULL is SQL NULL inside the array; our columns never hold one.
      if (item.empty() || item == "NULL") return std::nullopt;
    }
    items.push_back(std::move(item));
    if (i == end) return items;
    if (text[i] != ',') return std::nullopt;
    ++i;
  }
}

}  // namespace tsunagu::cluster
