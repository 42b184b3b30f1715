#include "cluster/pg/pg_reader.hpp"

#include <uv.h>

namespace tsunagu::cluster {

storage::StoreError store_error(const PgError& error) {
  return storage::StoreError{storage::StoreErrc::io_error, 0,
                             "PostgreSQL: " + std::string(to_string(error.code)) + ": " + error.detail};
}

std::string with_connect_timeout(const std::string& conninfo, int seconds) {
  if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
  std::string timeout = std::to_string(seconds);
  if (conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://"))
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=" + timeout;
  return conninfo + (conninfo.empty() ? "" : " ") + "connect_timeout=" + timeout;
}

Expected<std::unique_ptr<PgReader>, PgError> PgReader::connect(uv_loop_s* loop, const std::string& conninfo) {
  auto connection = PgConnection::connect(conninfo);
  if (!connection) return Unexpected(connection.error());
  std::unique_ptr<PgReader> reader(new PgReader());
  reader->loop_ = loop;
  reader->connection_ = std::move(*connection);
  return reader;
}

uint64_t PgReader::now_ms() const { return uv_now(loop_); }

std::optional<storage::StoreError> PgReader::check_up() {
  uint64_t now = uv_now(loop_);
  if (now < down_until_ms_)
    return storage::StoreError{storage::StoreErrc::io_error, 0, "PostgreSQL unreachable (retrying shortly)"};
  if (!connection_->healthy()) {
    if (auto reset = connection_->reset(); !reset) {
      down_until_ms_ = now + retry_ms;
      return store_error(reset.error());
    }
  }
  return std::nullopt;
}

void PgReader::note_failure(const PgError& error) {
  if (error.code == PgErrc::connection) down_until_ms_ = uv_now(loop_) + retry_ms;
}

}  // namespace tsunagu::cluster
