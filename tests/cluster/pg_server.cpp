#include "tests/cluster/pg_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

namespace tsunagu::test {

namespace {

std::string& reason() {
  static std::string text;
  return text;
}

// The newest PostgreSQL server installed (Debian: /usr/lib/postgresql/NN/bin).
std::string find_bin_dir() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    auto candidate = entry.path() / "bin";
    if (std::filesystem::exists(candidate / "postgres") && candidate.string() > best) best = candidate.string();
  }
  return best;
}

// In a forked child: stdout and stderr to `log`. dup2, not freopen, which
// would flush the parent's buffered output a second time from the child.
void redirect_output(const std::string& log) {
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) _exit(125);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
}

// Starts argv as uid/gid (when root) with its output to `log`. A server gets
// a process group of its own (so a crash can take its backends too) and dies
// with the test (PR_SET_PDEATHSIG, set after the uid change, which clears it).
pid_t spawn_as(uid_t uid, gid_t gid, const std::vector<std::string>& argv, const std::string& log, bool server) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (server) setpgid(0, 0);
    if (getuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
    if (server) prctl(PR_SET_PDEATHSIG, SIGKILL);
    redirect_output(log);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (server) setpgid(child, child);  // also here, so the group exists before we might signal it
  return child;
}

// Runs argv as uid/gid and waits; returns its exit status or -1.
int run_as(uid_t uid, gid_t gid, const std::vector<std::string>& argv, const std::string& log) {
  pid_t child = spawn_as(uid, gid, argv, log, false);
  if (child < 0) return -1;
  int status = 0;
  if (waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void stop_at_exit() {
  // A static's destructor would run too late for a test killed by a signal;
  // exit() paths come here.
  if (auto* server = PgServer::shared(); server != nullptr) server->~PgServer();
}

}  // namespace

const std::string& PgServer::skip_reason() { return reason(); }

PgServer* PgServer::shared() {
  static PgServer* server = [] {
    auto* made = new PgServer();
    if (!made->init()) {
      delete made;
      return static_cast<PgServer*>(nullptr);
    }
    return made;
  }();
  return server;
}

bool PgServer::init() {
  bin_dir_ = find_bin_dir();
  if (bin_dir_.empty()) {
    reason() = "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)";
    return false;
  }
  uid_ = getuid();
  gid_ = getgid();
  if (uid_ == 0) {
    const passwd* user = getpwnam("postgres");
    if (user == nullptr) {
      reason() = "running as root and there is no 'postgres' user to run the server as";
      return false;
    }
    uid_ = user->pw_uid;
    gid_ = user->pw_gid;
  }
  char pattern[] = "/tmp/tsunagu-pg-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    reason() = "mkdtemp failed";
    return false;
  }
  root_ = pattern;
  if (chown(root_.c_str(), uid_, gid_) != 0) {
    reason() = "cannot chown " + root_ + " to the postgres user";
    return false;
  }
  std::atexit(stop_at_exit);
  // --no-sync: initdb's own files need no fsync for a test; the server
  // itself runs with its defaults (fsync, synchronous_commit on).
  int initdb = run_as(uid_, gid_,
                      {bin_dir_ + "/initdb", "-D", root_ + "/data", "--auth=trust", "--username=postgres",
                       "--no-sync", "--encoding=UTF8", "--locale=C"},
                      root_ + "/initdb.log");
  if (initdb != 0) {
    reason() = "initdb failed (exit " + std::to_string(initdb) + "); see " + root_ + "/initdb.log";
    return false;
  }
  if (!launch() || !wait_ready()) {
    reason() = "postgres did not start; see " + root_ + "/server.log";
    return false;
  }
  return true;
}

bool PgServer::launch() {
  std::vector<std::string> argv = {bin_dir_ + "/postgres", "-D", root_ + "/data", "-k", root_, "-p", "5432",
                                   "-c", "listen_addresses=", "-c", "max_connections=20",
                                   // After a crash, one syncfs instead of an fsync of every file of the
                                   // data directory (the default): same guarantee, far less time.
                                   "-c", "recovery_init_sync_method=syncfs", "-c", "log_min_messages=info",
                                   "-c", "log_line_prefix=%m "};
  pid_ = spawn_as(uid_, gid_, argv, root_ + "/server.log", true);
  return pid_ > 0;
}

bool PgServer::wait_ready() {
  std::string info = conninfo();
  // Bounded: 600 tries of 50 ms (crash recovery of a small cluster takes well under a second).
  for (int attempt = 0; attempt < 600; ++attempt) {
    if (PQping(info.c_str()) == PQPING_OK) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string PgServer::conninfo(const std::string& database) const {
  return "host=" + root_ + " port=5432 user=postgres dbname=" + database;
}

std::string PgServer::fresh_schema() {
  // A schema, not a database: CREATE DATABASE copies a template of some
  // megabytes, which the checkpoint ending crash recovery then writes again.
  std::string name = "test_" + std::to_string(++schemas_);
  std::unique_ptr<PGconn, void (*)(PGconn*)> admin(PQconnectdb(conninfo().c_str()), PQfinish);
  std::unique_ptr<PGresult, void (*)(PGresult*)> made(PQexec(admin.get(), ("CREATE SCHEMA " + name).c_str()),
                                                      PQclear);
  if (PQresultStatus(made.get()) != PGRES_COMMAND_OK) return "";
  return conninfo() + " options=-csearch_path=" + name;
}

void PgServer::crash() {
  if (pid_ <= 0) return;
  pid_t group = pid_;
  kill(-group, SIGKILL);  // the group this test created: the postmaster and its backends
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  // The backends are the postmaster's children, not ours: wait (bounded, 2 s)
  // until the group is gone, so the next postmaster finds no shared memory
  // still attached.
  for (int attempt = 0; attempt < 200 && kill(-group, 0) == 0; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

bool PgServer::restart() { return launch() && wait_ready(); }

PgServer::~PgServer() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
    root_.clear();
  }
}

}  // namespace tsunagu::test
