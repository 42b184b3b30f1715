// hook_flood: benchmark 5's hook-socket load. Speaks the tsunagu-dhcp-hook ->
// agent protocol (lan-agent/hook_protocol.hpp) directly, as many hooks at once
// would: per connection 'E', K LeaseEvent records, half-close, wait for the
// agent's one-byte answer (ACK only after the events' batch committed). Keeps
// --connections requests in flight for --duration seconds.
//
// Every event is a dnsmasq renewal of one of --clients leases with an expiry
// later than any before it, so the table applies it (none is a duplicate).
//
//   hook_flood --socket PATH [--connections 16] [--events 1] [--clients 1000]
//              [--duration 3] [--base-ip 10.77.0.0]
//
// Prints one JSON line: requests and events acknowledged per second, NAKs,
// failures, the per-request latency (connect to ACK) and this program's own
// CPU time (so a reader can tell whether the callers or the agent set the rate).
//
// A caller does what a blocking hook does, in the same order and no more:
// socket, connect, write, shutdown, then waits in epoll for the answer, reads
// it and closes. A request that does not fit in the socket's buffer at once (a
// large --events) waits for EPOLLOUT and goes on from there.
#include <signal.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/lease_event.hpp"
#include "bench/load_link.hpp"
#include "lan-agent/hook_protocol.hpp"

namespace {

using namespace tsunagu;
using bench::now_ns;

struct Request {
  int fd = -1;
  Bytes bytes;
  size_t offset = 0;
  uint64_t start_ns = 0;
  size_t events = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  size_t connections = 16, events_per_request = 1, clients = 1000;
  double duration = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view arg = argv[i];
    if (arg == "--socket") socket_path = argv[i + 1];
    else if (arg == "--connections") connections = std::strtoul(argv[i + 1], nullptr, 10);
    else if (arg == "--events") events_per_request = std::strtoul(argv[i + 1], nullptr, 10);
    else if (arg == "--clients") clients = std::strtoul(argv[i + 1], nullptr, 10);
    else if (arg == "--duration") duration = std::strtod(argv[i + 1], nullptr);
    else return std::fprintf(stderr, "hook_flood: unknown argument %s\n", argv[i]), 2;
  }
  if (socket_path.empty() || socket_path.size() >= sizeof(sockaddr_un{}.sun_path) || connections == 0 ||
      connections > 1024 || events_per_request == 0 || events_per_request > lanagent::kMaxHookEvents ||
      clients == 0 || clients > 65000 || !(duration > 0 && duration <= 120)) {
    std::fprintf(stderr,
                 "usage: hook_flood --socket PATH [--connections 1..1024] [--events 1..512] [--clients 1..65000]\n"
                 "                  [--duration (0,120]]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const int64_t base_time = static_cast<int64_t>(std::time(nullptr));
  uint64_t sequence = 0;
  auto make_request = [&](Request& r) -> bool {
    std::vector<alloc::LeaseEvent> events;
    for (size_t k = 0; k < events_per_request; ++k) {
      size_t client = sequence % clients;
      alloc::LeaseEvent e;
      e.action = alloc::LeaseAction::renew;
      e.source = alloc::ServerKind::dnsmasq;
      e.address.family = proto::SocketAddress::Family::ipv4;
      e.address.ip = {10, 77, static_cast<uint8_t>(client >> 8), static_cast<uint8_t>(client)};
      char mac[18];
      std::snprintf(mac, sizeof mac, "02:77:00:00:%02zx:%02zx", (client >> 8) & 0xff, client & 0xff);
      e.mac = mac;
      e.server = "bench0";
      e.expires = base_time + 3600 + static_cast<int64_t>(sequence);  // later than every earlier event
      e.reported_at = base_time;
      ++sequence;
      events.push_back(std::move(e));
    }
    auto encoded = lanagent::encode_events_request(events);
    if (!encoded) return false;
    r.bytes = std::move(*encoded);
    r.events = events.size();
    return true;
  };

  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.data(), socket_path.size());
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Request> slots(connections);
  uint64_t acked_requests = 0, acked_events = 0, naks = 0, failures = 0;
  std::vector<uint32_t> latencies;
  std::string first_failure;
  auto fail = [&](const std::string& why) {
    if (failures++ == 0) first_failure = why;
  };
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(duration * 1e9);
  auto launch = [&](size_t slot) {
    Request& r = slots[slot];
    r = Request{};
    if (now_ns() >= end) return;
    if (!make_request(r)) return fail("encode failed");
    r.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    r.start_ns = now_ns();
    if (::connect(r.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      fail(std::string("connect: ") + std::strerror(errno));
      ::close(r.fd);
      r.fd = -1;
      return;
    }
    // A Unix socket's connect completes at once (the agent accepts later), so
    // the request is written straight away, as a hook does.
    ssize_t w = ::write(r.fd, r.bytes.data(), r.bytes.size());
    if (w < 0 && errno != EAGAIN) {
      fail(std::string("write: ") + std::strerror(errno));
      ::close(r.fd);
      r.fd = -1;
      return;
    }
    if (w > 0) r.offset = static_cast<size_t>(w);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (r.offset == r.bytes.size())
      ::shutdown(r.fd, SHUT_WR);
    else
      ev.events |= EPOLLOUT;
    ev.data.u64 = slot;
    epoll_ctl(ep, EPOLL_CTL_ADD, r.fd, &ev);
  };
  auto finish = [&](size_t slot) {
    Request& r = slots[slot];
    ::close(r.fd);  // leaves the epoll set with it (the descriptor is not shared)
    r.fd = -1;
    launch(slot);
  };
  for (size_t i = 0; i < connections; ++i) launch(i);
  uint64_t hard_end = end + 5'000'000'000ull;
  for (;;) {
    size_t active = 0;
    for (const auto& r : slots) active += r.fd >= 0;
    if (active == 0 || now_ns() > hard_end) break;
    epoll_event events[256];
    int n = epoll_wait(ep, events, 256, 20);
    for (int i = 0; i < n; ++i) {
      size_t slot = static_cast<size_t>(events[i].data.u64);
      Request& r = slots[slot];
      if (r.fd < 0) continue;
      if ((events[i].events & EPOLLOUT) && r.offset < r.bytes.size()) {
        ssize_t w = ::write(r.fd, r.bytes.data() + r.offset, r.bytes.size() - r.offset);
        if (w < 0 && errno != EAGAIN) {
          fail(std::string("write: ") + std::strerror(errno));
          finish(slot);
          continue;
        }
        if (w > 0) r.offset += static_cast<size_t>(w);
        if (r.offset == r.bytes.size()) {
          ::shutdown(r.fd, SHUT_WR);
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = slot;
          epoll_ctl(ep, EPOLL_CTL_MOD, r.fd, &ev);
        }
      }
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        std::byte answer{};
        ssize_t got = ::read(r.fd, &answer, 1);
        if (got < 0 && errno == EAGAIN) continue;
        if (got == 1 && answer == lanagent::kAck) {
          ++acked_requests;
          acked_events += r.events;
          latencies.push_back(static_cast<uint32_t>(std::min<uint64_t>(now_ns() - r.start_ns, UINT32_MAX)));
        } else if (got == 1 && answer == lanagent::kNak) {
          ++naks;
        } else {
          fail(got == 0 ? "closed without an answer" : "unexpected answer");
        }
        finish(slot);
      }
    }
  }
  for (auto& r : slots)
    if (r.fd >= 0) {
      ::close(r.fd);
      fail("no answer before the deadline");
    }
  double elapsed = static_cast<double>(now_ns() - start) / 1e9;
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    if (latencies.empty()) return 0.0;
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(q * static_cast<double>(latencies.size() - 1) + 0.5))] / 1000.0;
  };
  std::printf("{\"connections\": %zu, \"events_per_request\": %zu, \"duration_s\": %.3f, \"acked_requests\": %llu, "
              "\"acked_events\": %llu, \"events_per_s\": %.1f, \"requests_per_s\": %.1f, \"naks\": %llu, "
              "\"failures\": %llu, \"first_failure\": \"%s\", \"p50_us\": %.1f, \"p99_us\": %.1f, \"client_cpu_s\": %.3f}\n",
              connections, events_per_request, elapsed, static_cast<unsigned long long>(acked_requests),
              static_cast<unsigned long long>(acked_events), static_cast<double>(acked_events) / elapsed,
              static_cast<double>(acked_requests) / elapsed, static_cast<unsigned long long>(naks),
              static_cast<unsigned long long>(failures), first_failure.c_str(), pct(0.5), pct(0.99), cpu);
  return 0;
}
