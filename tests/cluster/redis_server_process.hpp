// Real redis-server processes for the cluster tests: started as children on
// 127.0.0.1 with ports the test picks (never 6379), no persistence, each in a
// temporary directory; killed by PID when the object goes, and by the kernel
// (PR_SET_PDEATHSIG) if the test process dies first.
#pragma once

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tsunagu::cluster::testing {

inline bool port_is_free(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return free;
}

// A port whose +10000 (Redis Cluster's bus port) is free too, away from 6379.
inline int pick_port() {
  std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = std::uniform_int_distribution<int>(20000, 29999)(random);
    if (port_is_free(port) && port_is_free(port + 10000)) return port;
  }
  throw std::runtime_error("no free port pair found");
}

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;
struct RedisContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};

// A blocking connection for the test's own checks (a client independent of the code under test).
class Inspector {
 public:
  explicit Inspector(int port) : context_(redisConnect("127.0.0.1", port)) {}
  bool ok() const { return context_ && context_->err == 0; }
  ReplyPtr run(const std::vector<std::string>& argv) {
    std::vector<const char*> pointers;
    std::vector<size_t> lengths;
    for (const std::string& arg : argv) {
      pointers.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    return ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(context_.get(), static_cast<int>(argv.size()), pointers.data(), lengths.data())));
  }
  std::string text(const std::vector<std::string>& argv) {
    ReplyPtr reply = run(argv);
    return reply && reply->str ? std::string(reply->str, reply->len) : std::string();
  }
  long long integer(const std::vector<std::string>& argv) {
    ReplyPtr reply = run(argv);
    return reply ? reply->integer : -1;
  }

 private:
  std::unique_ptr<redisContext, RedisContextDeleter> context_;
};

class RedisServerProcess {
 public:
  // extra_args: more redis-server options, e.g. {"--requirepass", "..."}.
  explicit RedisServerProcess(bool cluster_enabled = false, std::vector<std::string> extra_args = {})
      : port_(pick_port()), cluster_enabled_(cluster_enabled), extra_args_(std::move(extra_args)) {
    char pattern[] = "/tmp/tsunagu-redis-XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    directory_ = pattern;
    start();
  }
  ~RedisServerProcess() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  RedisServerProcess(const RedisServerProcess&) = delete;
  RedisServerProcess& operator=(const RedisServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  void start() {
    std::vector<std::string> args = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--daemonize", "no",
                                     "--dir", directory_, "--logfile", directory_ + "/redis.log"};
    if (cluster_enabled_) {
      args.insert(args.end(), {"--cluster-enabled", "yes", "--cluster-config-file", directory_ + "/nodes.conf",
                               "--cluster-node-timeout", "2000"});
    }
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    pid_ = spawn(args);
    // Ready when it answers PING (or, with a password, refuses it for want of AUTH): bounded to 10 s.
    for (int attempt = 0; attempt < 200; ++attempt) {
      Inspector probe(port_);
      std::string answer = probe.ok() ? probe.text({"PING"}) : std::string();
      if (answer == "PONG" || answer.starts_with("NOAUTH")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    throw std::runtime_error("redis-server did not answer on port " + std::to_string(port_));
  }

  // SIGKILL, as a crash: no shutdown save (there is none anyway).
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  static pid_t spawn(const std::vector<std::string>& args) {
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) throw std::runtime_error("fork failed");
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int null_fd = open("/dev/null", O_RDWR);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDIN_FILENO);
      std::vector<char*> argv;
      for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    return child;
  }

 private:
  int port_;
  bool cluster_enabled_;
  std::vector<std::string> extra_args_;
  std::string directory_;
  pid_t pid_ = -1;
};

// Three primaries joined by redis-cli --cluster create, all slots assigned.
class RedisClusterProcesses {
 public:
  RedisClusterProcesses() {
    for (int i = 0; i < 3; ++i) servers.push_back(std::make_unique<RedisServerProcess>(true));
    std::vector<std::string> args = {"redis-cli", "--cluster", "create"};
    for (auto& server : servers) args.push_back("127.0.0.1:" + std::to_string(server->port()));
    args.insert(args.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    pid_t creator = RedisServerProcess::spawn(args);
    int status = 0;
    waitpid(creator, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("redis-cli --cluster create failed");
    // Bounded wait (10 s) until every server says the cluster is ok.
    for (int attempt = 0; attempt < 200 && !all_ok(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!all_ok()) throw std::runtime_error("the cluster did not reach cluster_state:ok");
  }
  bool all_ok() {
    for (auto& server : servers) {
      Inspector probe(server->port());
      if (probe.text({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) return false;
    }
    return true;
  }
  std::vector<std::unique_ptr<RedisServerProcess>> servers;
};

}  // namespace tsunagu::cluster::testing
