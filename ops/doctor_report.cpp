#include "ops/doctor_report.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "base/files.hpp"
#include "proto/socket_address.hpp"
#include "security/certificates.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::ops {
namespace {

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string date_of(int64_t unix_s) {
  time_t t = static_cast<time_t>(unix_s);
  tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

// The inode of the socket bound to `port` (listening, for TCP) in /proc/net/FILE.
std::optional<std::string> socket_inode(const std::string& file, uint16_t port, bool udp) {
  std::ifstream in("/proc/net/" + file);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, skip, inode;
    fields >> slot >> local >> remote >> state;
    for (int i = 0; i < 5; ++i) fields >> skip;
    fields >> inode;
    auto colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
    if (!udp && state != "0A") continue;  // TCP_LISTEN
    return inode;
  }
  return std::nullopt;
}

// "NAME (pid N)" of a process holding socket `inode`, when /proc lets us see it.
std::optional<std::pair<std::string, int>> socket_holder(const std::string& inode) {
  std::string target = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  std::optional<std::pair<std::string, int>> found;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string fd_dir = "/proc/" + std::string(entry->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    while (dirent* fd = readdir(fds)) {
      char link[64];
      std::string path = fd_dir + "/" + fd->d_name;
      ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = '\0';
      if (target == link) {
        std::ifstream comm("/proc/" + std::string(entry->d_name) + "/comm");
        std::string name;
        std::getline(comm, name);
        found = std::pair{name, static_cast<int>(pid)};
        break;
      }
    }
    closedir(fds);
    if (found) break;
  }
  closedir(proc);
  return found;
}

}  // namespace

bool DoctorReport::failed() const { return count(Verdict::fail) > 0; }

size_t DoctorReport::count(Verdict verdict) const {
  size_t n = 0;
  for (const auto& f : findings_) n += f.verdict == verdict ? 1 : 0;
  return n;
}

std::string DoctorReport::text() const {
  std::string out;
  for (const auto& f : findings_) {
    out += f.verdict == Verdict::ok ? "ok    " : f.verdict == Verdict::warn ? "warn  " : "FAIL  ";
    out += f.check;
    if (!f.detail.empty()) out += ": " + f.detail;
    out += "\n";
  }
  out += std::to_string(count(Verdict::ok)) + " ok, " + std::to_string(count(Verdict::warn)) + " warning(s), " +
         std::to_string(count(Verdict::fail)) + " failure(s)\n";
  return out;
}

void check_certificate(DoctorReport& report, const std::string& path, std::string_view what, DoctorClock clock,
                       std::string_view renewal) {
  std::string check = std::string(what) + " " + path;
  auto text = read_text_file(path, 1 << 20);
  if (!text) return report.fail(check, "cannot read it (" + text.error() + ")");
  auto facts = security::certificate_facts(*text);
  if (!facts) return report.fail(check, "not a PEM certificate (" + facts.error().detail + ")");
  int64_t left = facts->not_after - clock.unix_now;
  if (left <= 0)
    return report.fail(check, "expired on " + date_of(facts->not_after) + "; issue a new one (" +
                                  (renewal.empty() ? std::string("tsunagu-rendezvous init --force, or enroll the agent again")
                                                   : std::string(renewal)) + ")");
  int64_t days = left / 86400;
  if (days < certificate_warning_days)
    return report.warn(check, "expires in " + std::to_string(days) + " day(s), on " + date_of(facts->not_after) +
                                  "; renew it before then" +
                                  (renewal.empty() ? std::string() : " (" + std::string(renewal) + ")"));
  report.ok(check, "valid until " + date_of(facts->not_after));
}

void check_private_key(DoctorReport& report, const std::string& path, std::string_view what) {
  std::string check = std::string(what) + " " + path;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return report.fail(check, std::string("missing (") + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) return report.fail(check, "not a regular file");
  if ((st.st_mode & 0077) != 0)
    return report.fail(check, "mode " + octal_mode(st.st_mode) + " lets " +
                                  ((st.st_mode & 0007) != 0 ? "everyone" : "its group") +
                                  " read or change the key; run: chmod 600 " + path);
  if (st.st_uid != geteuid())
    return report.warn(check, "owned by uid " + std::to_string(st.st_uid) + ", not the user running doctor (uid " +
                                  std::to_string(geteuid()) + "); the daemon's user must own it");
  report.ok(check, "mode " + octal_mode(st.st_mode));
}

void check_data_directory(DoctorReport& report, const std::string& path, std::string_view what) {
  std::string check = std::string(what) + " " + path;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return report.fail(check, std::string("missing (") + std::strerror(errno) + ")");
  if (!S_ISDIR(st.st_mode)) return report.fail(check, "not a directory");
  if ((st.st_mode & 0002) != 0)
    return report.fail(check, "mode " + octal_mode(st.st_mode) + ": anyone can write here; run: chmod o-w " + path);
  if ((st.st_mode & 0020) != 0)
    return report.warn(check, "mode " + octal_mode(st.st_mode) + ": its group can write here; run: chmod g-w " + path);
  if (st.st_uid != geteuid())
    return report.warn(check, "owned by uid " + std::to_string(st.st_uid) + ", not the user running doctor (uid " +
                                  std::to_string(geteuid()) + ")");
  report.ok(check, "mode " + octal_mode(st.st_mode));
}

void check_listen_port(DoctorReport& report, const std::string& address, bool udp, std::string_view what,
                       std::string_view own_program) {
  std::string check = std::string(what) + " " + (udp ? "udp " : "tcp ") + address;
  auto parsed = proto::SocketAddress::parse(address);
  if (!parsed) return report.fail(check, "not an ADDRESS:PORT");
  if (parsed->port == 0) return report.ok(check, "port 0: the kernel picks a free one");
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (parsed->family == proto::SocketAddress::Family::ipv4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(parsed->port);
    std::memcpy(&v4->sin_addr, parsed->ip.data(), 4);
    length = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(parsed->port);
    std::memcpy(&v6->sin6_addr, parsed->ip.data(), 16);
    length = sizeof(sockaddr_in6);
  }
  int fd = socket(storage.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (fd < 0) return report.warn(check, std::string("cannot test it: ") + std::strerror(errno));
  int one = 1;
  if (!udp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // TIME_WAIT is not "in use"
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&storage), length);
  int error = errno;
  close(fd);
  if (rc == 0) return report.ok(check, "free");
  if (error == EADDRNOTAVAIL) return report.fail(check, "no interface of this host has that address");
  if (error == EACCES)
    return report.warn(check, "a port below 1024 needs root or CAP_NET_BIND_SERVICE for the daemon's user");
  if (error != EADDRINUSE) return report.warn(check, std::string("cannot test it: ") + std::strerror(error));
  std::string file = std::string(udp ? "udp" : "tcp") + (storage.ss_family == AF_INET6 ? "6" : "");
  std::optional<std::pair<std::string, int>> holder;
  if (auto inode = socket_inode(file, parsed->port, udp)) holder = socket_holder(*inode);
  if (holder) {
    // /proc/PID/comm keeps 15 characters of the name.
    if (holder->first == own_program.substr(0, 15))
      return report.ok(check, "held by " + std::string(own_program) + " (pid " + std::to_string(holder->second) +
                                  "), the daemon itself");
    return report.fail(check, "in use by " + holder->first + " (pid " + std::to_string(holder->second) +
                                  "); stop it or choose another port");
  }
  report.fail(check, "in use by another process (not visible to this user); stop it or choose another port");
}

void check_map_usage(DoctorReport& report, const std::string& directory, uint64_t map_size, std::string_view what) {
  std::string check = std::string(what) + " " + directory;
  struct stat st {};
  if (stat((directory + "/data.mdb").c_str(), &st) != 0)
    return report.fail(check, "no data.mdb here (the daemon creates it on its first start)");
  auto env = storage::Environment::open(directory, storage::Environment::Options{map_size, 16, 126});
  if (!env) return report.fail(check, "cannot open it: " + env.error().detail);
  auto usage = (*env)->usage();
  if (!usage) return report.fail(check, "cannot read its size: " + usage.error().detail);
  double share = usage->map_bytes == 0 ? 0 : static_cast<double>(usage->used_bytes) / static_cast<double>(usage->map_bytes);
  char text[160];
  std::snprintf(text, sizeof text, "%.1f%% of the map used (%.1f of %.1f MiB)", share * 100,
                static_cast<double>(usage->used_bytes) / 1048576.0, static_cast<double>(usage->map_bytes) / 1048576.0);
  if (share > 0.95) return report.fail(check, std::string(text) + "; writes will fail soon: raise the map size and restart");
  if (share > 0.80) return report.warn(check, std::string(text) + "; raise the map size before it fills");
  report.ok(check, text);
}

void check_clock(DoctorReport& report, DoctorClock clock) {
  constexpr int64_t year_2024 = 1704067200;
  if (clock.unix_now < year_2024)
    return report.fail("clock", "the system time is " + date_of(clock.unix_now) +
                                    ", before 2024: certificates cannot be checked; set the time (NTP)");
  timex tx{};
  int state = adjtimex(&tx);
  if (state == TIME_ERROR)
    return report.warn("clock", date_of(clock.unix_now) +
                                    "; the kernel says the clock is not synchronised: run an NTP client "
                                    "(systemd-timesyncd, chrony)");
  report.ok("clock", date_of(clock.unix_now) + ", synchronised");
}

}  // namespace tsunagu::ops
