// A real PostgreSQL for the cluster tests: initdb into a temporary directory
// and a postmaster on a unix socket only (listen_addresses=''), run as the
// `postgres` user when the tests run as root (postgres refuses root). One
// server per test binary; each test takes a fresh schema of its own.
//
// The postmaster is the test's child in its own process group, with
// PR_SET_PDEATHSIG, so it ends with the test however the test ends; the
// destructor stops it (SIGKILL to that group, our processes only) and removes
// the directory.
#pragma once

#include <sys/types.h>

#include <string>

namespace tsunagu::test {

class PgServer {
 public:
  // The binary's server, started on first use; nullptr when PostgreSQL cannot
  // run here, with the reason in skip_reason().
  static PgServer* shared();
  static const std::string& skip_reason();

  // A libpq connection string for `database` on this server.
  std::string conninfo(const std::string& database = "postgres") const;
  // A new empty schema, unique within this run; returns a conninfo whose
  // search_path is that schema, so each test has tables of its own.
  std::string fresh_schema();

  // kill -9 of the postmaster and every process of its group (its backends):
  // a crash, nothing flushed by a clean shutdown.
  void crash();
  // Starts the postmaster again on the same data directory and waits until
  // it accepts connections (crash recovery included). false on failure.
  bool restart();
  pid_t postmaster_pid() const { return pid_; }

  ~PgServer();

 private:
  PgServer() = default;
  bool init();
  bool launch();
  bool wait_ready();
  std::string root_;     // temporary directory: data/ and the socket
  std::string bin_dir_;  // /usr/lib/postgresql/NN/bin
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
  unsigned schemas_ = 0;
};

}  // namespace tsunagu::test
