// idle_links: benchmark 4's client. Opens TLS links to a loopback server in
// stages (e.g. 10,000 then 18,000 links), at most --connect-inflight
// handshakes at a time, and after each stage reads the server's memory from
// /proc/PID/status (VmRSS, RssAnon). Then every link sends a keepalive request
// once per --keepalive-interval (spread evenly) during --idle-window seconds,
// and the server's CPU time over that window is read from /proc/PID (every
// thread's schedstat).
//
//   idle_links --target 127.0.0.1:PORT --ca CA.crt --server-pid PID
//              [--stages 10000,18000] [--connect-inflight 256] [--settle S]
//              [--keepalive-interval S] [--idle-window S] [--timeout S]
//              [--windows-on-stdin 1]
//
// Prints one JSON line. With --windows-on-stdin 1 it prints a line when the
// stages are open, then runs one idle window per "window" line read from
// stdin (a JSON line each) until another line or end of input, then the
// usual line (its window figures zero). Links are closed with a reset (no TIME_WAIT left).
// "accepted_per_s" is links whose TLS handshake completed per second of the
// stage, from its first connect to its last completed handshake.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load_link.hpp"
#include "proto/signalling.hpp"

namespace {

using namespace tsunagu;
using bench::LoadLink;
using bench::now_ns;

struct Memory {
  long rss_kib = -1, anon_kib = -1;
};

Memory read_memory(int pid) {
  Memory m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) m.rss_kib = std::stol(line.substr(6));
    if (line.rfind("RssAnon:", 0) == 0) m.anon_kib = std::stol(line.substr(8));
  }
  return m;
}

// The server's CPU time, all threads: the sum of their scheduler run time
// (/proc/PID/task/*/schedstat, nanoseconds), as bench/run.py reads it; utime +
// stime in clock ticks (10 ms) where schedstat is missing. Ticks made a 5 s
// window at 1-2% of a core a count of 5-20.
double cpu_seconds_of(int pid) {
  std::error_code failed;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", failed);
  if (!failed) {
    unsigned long long run_ns = 0;
    bool any = false;
    for (const auto& task : tasks) {
      std::ifstream in(task.path() / "schedstat");
      unsigned long long ns = 0;
      if (in >> ns) run_ns += ns, any = true;
    }
    if (any) return static_cast<double>(run_ns) / 1e9;
  }
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream rest(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 0; i < 13 && rest >> field; ++i) {
    if (i == 11) utime = std::stoull(field);
    if (i == 12) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Options {
  proto::SocketAddress target;
  std::string ca_file, server_name = "localhost";
  int server_pid = 0;
  std::vector<size_t> stages{10000, 18000};
  size_t connect_inflight = 256;
  double settle_s = 1.0, keepalive_interval_s = 15, idle_window_s = 5, timeout_s = 120;
  bool windows_on_stdin = false;
};

class Holder {
 public:
  explicit Holder(Options o) : o_(std::move(o)) {}

  int run();

 private:
  struct Window {
    double seconds = 0, server_cpu_s = 0;
    uint64_t keepalives = 0, answers = 0;
  };
  Window idle_window();
  void poll(int timeout_ms);
  void service_for(double seconds) {
    uint64_t end = now_ns() + static_cast<uint64_t>(seconds * 1e9);
    while (now_ns() < end && fatal_.empty()) poll(20);
  }
  void update(size_t index) {
    auto& link = *links_[index];
    if (link.fd() < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (link.wants_write() ? EPOLLOUT : 0u);
    ev.data.u64 = index;
    epoll_ctl(ep_, EPOLL_CTL_MOD, link.fd(), &ev);
  }

  Options o_;
  std::shared_ptr<security::TlsContext> context_;
  std::vector<std::unique_ptr<LoadLink>> links_;
  int ep_ = -1;
  size_t open_ = 0, handshaking_ = 0;
  uint64_t last_open_ns_ = 0, answers_ = 0;
  // Keepalives go round the links in order, across windows.
  size_t keepalive_cursor_ = 0;
  uint64_t keepalive_count_ = 0;
  uint32_t keepalive_nonce_ = static_cast<uint32_t>(getpid());
  std::string fatal_;
};

void Holder::poll(int timeout_ms) {
  epoll_event events[512];
  int n = epoll_wait(ep_, events, 512, timeout_ms);
  for (int i = 0; i < n; ++i) {
    size_t index = static_cast<size_t>(events[i].data.u64);
    LoadLink& link = *links_[index];
    if (link.state() == LoadLink::State::closed) continue;
    bool was_open = link.state() == LoadLink::State::open;
    bool ok = true;
    if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ok = link.on_writable();
    if (ok && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
      ok = link.on_readable([&](ByteView) { ++answers_; });
    if (!ok) {
      fatal_ = "link " + std::to_string(index) + ": " + link.error();
      continue;
    }
    if (!was_open && link.state() == LoadLink::State::open) {
      ++open_;
      --handshaking_;
      last_open_ns_ = now_ns();
    }
    update(index);
  }
}

// Each link sends one keepalive per interval, spread evenly, for
// --idle-window seconds; the server's CPU time over the window.
Holder::Window Holder::idle_window() {
  Window w;
  double cpu0 = cpu_seconds_of(o_.server_pid);
  uint64_t answers0 = answers_;
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(o_.idle_window_s * 1e9);
  double per_ns = static_cast<double>(links_.size()) / (o_.keepalive_interval_s * 1e9);
  while (now_ns() < end && fatal_.empty()) {
    uint64_t due = static_cast<uint64_t>(static_cast<double>(now_ns() - start) * per_ns);
    while (w.keepalives < due) {
      size_t index = keepalive_cursor_++ % links_.size();
      ++w.keepalives;
      proto::MessageBuilder b(proto::MessageClass::request, proto::method::keepalive,
                              bench::random_transaction(++keepalive_count_, keepalive_nonce_));
      b.add_u32(proto::attr::protocol_version, proto::protocol_version);
      links_[index]->send(b.finish());
      links_[index]->flush();
      update(index);
    }
    poll(10);
  }
  w.seconds = static_cast<double>(now_ns() - start) / 1e9;
  w.server_cpu_s = cpu_seconds_of(o_.server_pid) - cpu0;
  w.answers = answers_ - answers0;
  return w;
}

int Holder::run() {
  security::TlsContext::ClientOptions client;
  client.ca_file = o_.ca_file;
  auto context = security::TlsContext::client(client);
  if (!context) return std::fprintf(stderr, "idle_links: %s\n", context.error().detail.c_str()), 1;
  context_ = *context;
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  uint64_t deadline = now_ns() + static_cast<uint64_t>(o_.timeout_s * 1e9);
  Memory before = read_memory(o_.server_pid);
  Memory own_before = read_memory(getpid());
  std::string stages_json;
  for (size_t stage_target : o_.stages) {
    size_t stage_start_count = links_.size();
    uint64_t stage_start = now_ns();
    while ((open_ < stage_target) && fatal_.empty()) {
      while (links_.size() < stage_target && handshaking_ < o_.connect_inflight) {
        auto link = std::make_unique<LoadLink>();
        if (auto failed = link->connect(o_.target, nullptr, context_, o_.server_name)) {
          fatal_ = "connect " + std::to_string(links_.size()) + ": " + *failed;
          break;
        }
        links_.push_back(std::move(link));
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u64 = links_.size() - 1;
        epoll_ctl(ep_, EPOLL_CTL_ADD, links_.back()->fd(), &ev);
        ++handshaking_;
      }
      poll(10);
      if (now_ns() > deadline) fatal_ = "timed out opening links";
    }
    if (!fatal_.empty()) break;
    double stage_s = static_cast<double>(last_open_ns_ - stage_start) / 1e9;
    size_t opened = links_.size() - stage_start_count;
    service_for(o_.settle_s);
    Memory m = read_memory(o_.server_pid);
    double per_link = static_cast<double>(m.rss_kib - before.rss_kib) * 1024.0 / static_cast<double>(open_);
    double per_link_anon = static_cast<double>(m.anon_kib - before.anon_kib) * 1024.0 / static_cast<double>(open_);
    char item[512];
    std::snprintf(item, sizeof item,
                  "%s{\"links\": %zu, \"opened\": %zu, \"open_s\": %.3f, \"accepted_per_s\": %.1f, "
                  "\"server_rss_kib\": %ld, \"server_anon_kib\": %ld, \"rss_per_link_bytes\": %.0f, "
                  "\"anon_per_link_bytes\": %.0f}",
                  stages_json.empty() ? "" : ", ", open_, opened, stage_s,
                  stage_s > 0 ? static_cast<double>(opened) / stage_s : 0.0, m.rss_kib, m.anon_kib, per_link,
                  per_link_anon);
    stages_json += item;
  }
  // Windows on command (--windows-on-stdin): the links are held while the
  // runner measures other servers, so windows of several servers alternate
  // under the same machine load. One JSON line per window, one at the end.
  if (o_.windows_on_stdin) {
    std::printf("{\"opened\": %zu, \"stages\": [%s], \"fatal\": \"%s\"}\n", open_, stages_json.c_str(),
                fatal_.c_str());
    std::fflush(stdout);
    char line[64];
    while (fatal_.empty() && std::fgets(line, sizeof line, stdin) != nullptr && std::string_view(line) == "window\n") {
      Window w = idle_window();
      std::printf("{\"idle_window_s\": %.3f, \"keepalives_sent\": %llu, \"answers\": %llu, "
                  "\"idle_server_cpu_s\": %.4f, \"idle_server_cpu_share\": %.5f, \"fatal\": \"%s\"}\n",
                  w.seconds, static_cast<unsigned long long>(w.keepalives), static_cast<unsigned long long>(w.answers),
                  w.server_cpu_s, w.seconds > 0 ? w.server_cpu_s / w.seconds : 0.0, fatal_.c_str());
      std::fflush(stdout);
    }
  }
  Window w;
  if (fatal_.empty() && !o_.windows_on_stdin) w = idle_window();
  double idle_cpu = w.server_cpu_s, window = w.seconds;
  uint64_t keepalives = w.keepalives;
  Memory after = read_memory(o_.server_pid);
  Memory own = read_memory(getpid());
  std::printf("{\"target\": \"%s\", \"links\": %zu, \"server_rss_before_kib\": %ld, \"server_anon_before_kib\": %ld, "
              "\"stages\": [%s], \"idle_window_s\": %.3f, \"keepalive_interval_s\": %.1f, \"keepalives_sent\": %llu, "
              "\"answers\": %llu, \"idle_server_cpu_s\": %.4f, \"idle_server_cpu_share\": %.5f, "
              "\"server_rss_after_kib\": %ld, \"client_rss_per_link_bytes\": %.0f, \"fatal\": \"%s\"}\n",
              o_.target.to_string().c_str(), open_, before.rss_kib, before.anon_kib, stages_json.c_str(), window,
              o_.keepalive_interval_s, static_cast<unsigned long long>(keepalives),
              static_cast<unsigned long long>(answers_), idle_cpu, window > 0 ? idle_cpu / window : 0.0,
              after.rss_kib,
              links_.empty() ? 0.0
                             : static_cast<double>(own.rss_kib - own_before.rss_kib) * 1024.0 /
                                   static_cast<double>(links_.size()),
              fatal_.c_str());
  std::fflush(stdout);
  links_.clear();  // resets every connection
  return fatal_.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  bool have_target = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view arg = argv[i];
    std::string value = argv[i + 1];
    if (arg == "--target") {
      auto parsed = proto::SocketAddress::parse(value);
      if (!parsed || !bench::is_loopback(*parsed)) return std::fprintf(stderr, "idle_links: --target loopback only\n"), 2;
      o.target = *parsed;
      have_target = true;
    } else if (arg == "--ca") {
      o.ca_file = value;
    } else if (arg == "--server-name") {
      o.server_name = value;
    } else if (arg == "--server-pid") {
      o.server_pid = std::atoi(value.c_str());
    } else if (arg == "--stages") {
      o.stages.clear();
      std::istringstream list(value);
      std::string item;
      while (std::getline(list, item, ',')) o.stages.push_back(std::stoul(item));
    } else if (arg == "--connect-inflight") {
      o.connect_inflight = std::stoul(value);
    } else if (arg == "--settle") {
      o.settle_s = std::stod(value);
    } else if (arg == "--keepalive-interval") {
      o.keepalive_interval_s = std::stod(value);
    } else if (arg == "--idle-window") {
      o.idle_window_s = std::stod(value);
    } else if (arg == "--timeout") {
      o.timeout_s = std::stod(value);
    } else if (arg == "--windows-on-stdin") {
      o.windows_on_stdin = value == "1";
    } else {
      return std::fprintf(stderr, "idle_links: unknown argument %s\n", argv[i]), 2;
    }
  }
  if (!have_target || o.ca_file.empty() || o.server_pid <= 0 || o.stages.empty() || o.connect_inflight == 0 ||
      !(o.keepalive_interval_s > 0) || !(o.timeout_s > 0 && o.timeout_s <= 1800) || o.stages.back() > 30000 ||
      !std::is_sorted(o.stages.begin(), o.stages.end())) {
    std::fprintf(stderr,
                 "usage: idle_links --target 127.0.0.1:PORT --ca CA.crt --server-pid PID [--stages 10000,18000]\n"
                 "       [--connect-inflight N] [--settle S] [--keepalive-interval S] [--idle-window S] [--timeout S]\n"
                 "       [--windows-on-stdin 1]\n");
    return 2;
  }
  Holder holder(std::move(o));
  return holder.run();
}
