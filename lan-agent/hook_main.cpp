// tsunagu-dhcp-hook: the one program dnsmasq (--dhcp-script), ISC dhcpd
// (execute() in on commit/release/expiry) and Kea (run_script) call. It hands
// the lease event(s) to the agent over its Unix socket and returns at once; when
// the agent is down or slow it appends them to the durable spool instead. It
// never makes the DHCP server fail: the exit status is always 0, problems go
// to stderr and syslog.
//
//   tsunagu-dhcp-hook [--config FILE] [--chain PROG] [--] SERVER-ARGS...
// The config (for [hook]) is --config, else $TSUNAGU_AGENT_CONFIG, else
// /etc/tsunagu/agent.toml (defaults when absent). The chained program is
// --chain, else $TSUNAGU_HOOK_CHAIN, else hook.chain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "allocation/field_normalisation.hpp"
#include "allocation/lease_event_codec.hpp"
#include "lan-agent/hook_invocation.hpp"
#include "lan-agent/hook_protocol.hpp"
#include "lan-agent/hook_settings.hpp"
#include "lan-agent/hook_spool.hpp"

extern char** environ;

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {

constexpr size_t kMaxInitListing = 64u << 20;

constexpr const char* kUsage =
    "tsunagu-dhcp-hook: hands a DHCP server's lease events to the Tsunagu LAN agent (man tsunagu-dhcp-hook)\n"
    "Usage: tsunagu-dhcp-hook [--config FILE] [--chain PROG] [--] SERVER-ARGS...\n"
    "OPTIONS:\n"
    "  --config FILE   agent.toml to read [hook] from (default $TSUNAGU_AGENT_CONFIG, else /etc/tsunagu/agent.toml)\n"
    "  --chain PROG    program to call next with the same arguments (default $TSUNAGU_HOOK_CHAIN, else hook.chain)\n"
    "Exit status: always 0, so the DHCP server never fails; problems go to stderr and syslog.\n";

void note(int priority, const std::string& message) {
  std::string line = "tsunagu-dhcp-hook: " + message + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  syslog(priority, "%s", message.c_str());
}

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

class Socket {
 public:
  Socket() : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

bool wait_for(int fd, short events, int64_t deadline_ms) {
  while (true) {
    int64_t left = deadline_ms - monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

// One exchange with the agent: sends `request`, half-closes, reads the answer
// until EOF (at most max_answer bytes). Empty optional on any failure.
std::optional<std::string> exchange(const std::string& path, ByteView request, int64_t timeout_ms, size_t max_answer,
                                    std::string& error) {
  int64_t deadline = monotonic_ms() + timeout_ms;
  Socket s;
  if (s.fd() < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return std::nullopt;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    error = "socket path too long";
    return std::nullopt;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      error = "connect " + path + ": " + std::strerror(errno);
      return std::nullopt;
    }
    // EAGAIN: the agent's backlog is full; treat as busy.
    error = "connect " + path + ": the agent is busy";
    return std::nullopt;
  }
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(s.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && wait_for(s.fd(), POLLOUT, deadline)) continue;
    error = n < 0 && errno != EAGAIN ? std::string("send: ") + std::strerror(errno) : "the agent did not read in time";
    return std::nullopt;
  }
  ::shutdown(s.fd(), SHUT_WR);
  std::string answer;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(s.fd(), buf, sizeof buf);
    if (n > 0) {
      if (answer.size() + static_cast<size_t>(n) > max_answer) {
        error = "the agent's answer is too long";
        return std::nullopt;
      }
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return answer;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && wait_for(s.fd(), POLLIN, deadline)) continue;
    error = errno == EAGAIN ? "no answer from the agent within " + std::to_string(timeout_ms) + " ms"
                            : std::string("read: ") + std::strerror(errno);
    return std::nullopt;
  }
}

std::string describe(const alloc::LeaseEvent& e) {
  return std::string(alloc::to_string(e.action)) + " " + alloc::ip_to_string(e.address) + " mac " +
         (e.mac.empty() ? std::string("-") : e.mac.str()) + " client-id " + (e.client_id.empty() ? "-" : e.client_id) + " host " +
         (e.hostname.empty() ? "-" : e.hostname) + " expires " + std::to_string(e.expires);
}

void spool(const HookSettings& settings, const std::vector<alloc::LeaseEvent>& events, const std::string& why) {
  Bytes records;
  for (const auto& e : events) {
    if (auto ok = alloc::encode_lease_event(e, records); !ok)
      note(LOG_ERR, "cannot encode " + describe(e) + ": " + ok.error().detail);
  }
  auto written = append_to_spool(settings.spool_directory, records);
  if (!written && errno == ENOENT && ::geteuid() == 0 &&
      prepare_spool_directory(settings.spool_directory, spool_group(settings.allowed_groups)))
    written = append_to_spool(settings.spool_directory, records);
  if (written) {
    note(LOG_WARNING, "agent unavailable (" + why + "): " + std::to_string(events.size()) + " event(s) spooled to " +
                          *written + "; the agent replays them when it runs");
    return;
  }
  note(LOG_ERR, "agent unavailable (" + why + ") and spooling failed: " + written.error());
  for (const auto& e : events) note(LOG_ERR, "LOST lease event (" + describe(e) + ")");
}

void run_chain(const std::string& program, const std::vector<std::string_view>& server_args, bool silence_stdout) {
  std::vector<std::string> storage{program};
  for (auto a : server_args) storage.emplace_back(a);
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    note(LOG_ERR, "chain " + program + ": fork: " + std::strerror(errno));
    return;
  }
  if (pid == 0) {
    if (silence_stdout) {
      int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) ::dup2(null, STDOUT_FILENO);
    }
    ::execve(program.c_str(), argv.data(), environ);
    std::string line = "tsunagu-dhcp-hook: chain " + program + ": " + std::strerror(errno) + "\n";
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    note(LOG_WARNING, "chain " + program + " exited with " + std::to_string(WEXITSTATUS(status)));
  else if (WIFSIGNALED(status))
    note(LOG_WARNING, "chain " + program + " killed by signal " + std::to_string(WTERMSIG(status)));
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  openlog("tsunagu-dhcp-hook", LOG_PID, LOG_DAEMON);
  std::vector<std::string_view> args;
  for (int i = 1; i < argc && args.size() <= alloc::kMaxHookArgs + 4; ++i) args.emplace_back(argv[i]);
  std::vector<std::string_view> env;
  for (char** e = environ; e != nullptr && *e != nullptr && env.size() <= alloc::kMaxHookEnvEntries; ++e)
    env.emplace_back(*e);
  auto find_env = [&](std::string_view name) -> std::optional<std::string> {
    for (auto entry : env)
      if (entry.size() > name.size() && entry[name.size()] == '=' && entry.starts_with(name))
        return std::string(entry.substr(name.size() + 1));
    return std::nullopt;
  };

  // No DHCP server passes --help alone; a person reading the man page might.
  if (args.size() == 1 && args[0] == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  HookOptions options = parse_hook_options(args);
  if (!options.error.empty()) note(LOG_WARNING, options.error);
  std::vector<std::string_view> server_args(args.begin() + static_cast<std::ptrdiff_t>(options.first_server_arg),
                                            args.end());

  std::string config_file = options.config.value_or(find_env("TSUNAGU_AGENT_CONFIG").value_or(kDefaultConfigPath));
  HookSettings settings;
  if (options.config || ::access(config_file.c_str(), F_OK) == 0) {
    try {
      settings = load_hook_settings(config_file);
    } catch (const ConfigFileError& error) {
      note(LOG_WARNING, std::string(error.what()) + "; using the default socket and spool");
    }
  } else if (errno != ENOENT) {
    // Absent means the defaults; present but out of reach (a 0700 bundle
    // directory, the DHCP server running as another user) must be said, or
    // events go to the default socket with no hint why the agent never sees them.
    note(LOG_WARNING, "cannot read " + config_file + ": " + std::strerror(errno) +
                          "; using the default socket " + settings.socket + " and spool " + settings.spool_directory);
  }
  std::string chain = options.chain.value_or(find_env("TSUNAGU_HOOK_CHAIN").value_or(settings.chain));

  HookServer server = detect_hook_server(server_args, env);
  bool dnsmasq_init = server == HookServer::dnsmasq && server_args[0] == "init";
  if (dnsmasq_init) {
    std::string error;
    Bytes request{kRequestInit};
    auto listing = exchange(settings.socket, request, std::max<int64_t>(settings.timeout_ms, 5000), kMaxInitListing,
                            error);
    if (listing) {
      size_t done = 0;
      while (done < listing->size()) {
        ssize_t n = ::write(STDOUT_FILENO, listing->data() + done, listing->size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
    } else {
      note(LOG_WARNING, "init: cannot ask the agent for its leases (" + error +
                            "); dnsmasq starts without them and relearns them as clients renew");
    }
  } else if (server == HookServer::unknown) {
    note(LOG_WARNING, "called with arguments no DHCP server uses (" +
                          (server_args.empty() ? std::string("none") : std::string(server_args[0])) + "); ignored");
  } else {
    alloc::HookCall call{server_args, env, static_cast<int64_t>(::time(nullptr))};
    auto events = events_of(server, call);
    if (!events) {
      note(LOG_ERR, std::string(to_string(server)) + " call not understood (" +
                        std::string(alloc::to_string(events.error().code)) + ": " + events.error().detail +
                        "); no event recorded");
    } else if (!events->empty()) {
      std::string error;
      auto request = encode_events_request(*events);
      if (!request) {
        note(LOG_ERR, "cannot encode the events: " + request.error().detail);
      } else {
        auto answer = exchange(settings.socket, *request, settings.timeout_ms, 1, error);
        if (!answer || answer->size() != 1 || std::byte(static_cast<unsigned char>((*answer)[0])) != kAck) {
          if (answer) error = "the agent could not commit them";
          spool(settings, *events, error);
        }
      }
    }
  }
  if (!chain.empty()) run_chain(chain, server_args, dnsmasq_init);
  return 0;
}
