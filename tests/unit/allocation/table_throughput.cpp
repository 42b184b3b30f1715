// Measures AllocationTable throughput (not a test: timings are printed, never
// asserted). Build: ninja tests/unit/allocation/allocation_throughput
//   1. hook events applied in group-committed batches (one write transaction
//      per agent loop turn), with durable commits;
//   2. parsing and syncing a 100,000-lease dnsmasq lease file.
#include <stdlib.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "allocation/allocation_table.hpp"
#include "allocation/dnsmasq_lease_file_parser.hpp"

using namespace tsunagu::alloc;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t T = 1795334000;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
// CPU seconds of this process: the figure that matters on a shared, loaded machine.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

std::string mac_of(int i) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "02:00:00:%02x:%02x:%02x", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
  return buf;
}

struct Fresh {
  std::string dir;
  std::unique_ptr<tsunagu::storage::Environment> env;
  Fresh() {
    char templ[] = "/tmp/alloc-bench.XXXXXX";
    if (mkdtemp(templ) == nullptr) std::abort();
    dir = templ;
    auto e = tsunagu::storage::Environment::open(dir);
    if (!e) std::abort();
    env = std::move(*e);
  }
  ~Fresh() {
    env.reset();
    std::filesystem::remove_all(dir);
  }
};

}  // namespace

int main() {
  TableOptions options;
  options.hostname_rule = *HostnameRule::parse("ext-{ext}");
  for (int batch_size : {100, 1000}) {
    Fresh f;
    auto table = AllocationTable::open(*f.env, options);
    if (!table) return 1;
    const int clients = 20000, rounds = 3;
    const int total = clients * rounds;
    auto start = Clock::now();
    const double cpu0 = cpu_seconds();
    int applied = 0;
    for (int r = 0; r < rounds; ++r) {
      for (int i = 0; i < clients; i += batch_size) {
        auto batch = table->begin_batch();
        if (!batch) return 1;
        for (int k = i; k < i + batch_size && k < clients; ++k) {
          LeaseEvent e;
          e.action = r == 0 ? LeaseAction::grant : LeaseAction::renew;
          e.source = ServerKind::dnsmasq;
          e.address.family = tsunagu::proto::SocketAddress::Family::ipv4;
          e.address.ip = {10, static_cast<uint8_t>(k >> 16), static_cast<uint8_t>(k >> 8), static_cast<uint8_t>(k)};
          e.mac = mac_of(k);
          e.hostname = "ext-" + std::to_string(1000 + k);
          e.expires = T + 3600 + r * 60;
          e.reported_at = T + r * 60;
          if (!batch->apply(e, T + r * 60)) return 1;
          ++applied;
        }
        if (!batch->commit()) return 1;
      }
    }
    double s = seconds_since(start), cpu = cpu_seconds() - cpu0;
    std::printf("hook events: %d applied in batches of %d: %.3f s wall (%.0f events/s), %.3f s CPU (%.0f events/s)\n",
                applied, batch_size, s, total / s, cpu, total / cpu);
  }
  {
    Fresh f;
    auto table = AllocationTable::open(*f.env, options);
    if (!table) return 1;
    std::string file;
    const int leases = 100000;
    for (int i = 0; i < leases; ++i) {
      char line[128];
      std::snprintf(line, sizeof line, "%lld %s 10.%d.%d.%d ext-%d 01:%s\n", static_cast<long long>(T + 3600),
                    mac_of(i).c_str(), (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 10000 + i, mac_of(i).c_str());
      file += line;
    }
    for (int pass = 0; pass < 2; ++pass) {
      auto start = Clock::now();
      const double cpu0 = cpu_seconds();
      auto snapshot = parse_dnsmasq_lease_file(file, T + pass);
      double parse_s = seconds_since(start);
      if (!snapshot || snapshot->leases.size() != leases) return 1;
      auto result = table->sync(*snapshot, T + pass);
      double total_s = seconds_since(start), cpu = cpu_seconds() - cpu0;
      if (!result) return 1;
      std::printf("sync of a %d-lease dnsmasq file (%.1f MiB), %s: parse %.3f s, total %.3f s wall, %.3f s CPU "
                  "(%zu applied, %zu duplicates, %zu changes)\n",
                  leases, static_cast<double>(file.size()) / (1 << 20), pass == 0 ? "into an empty table" : "again, unchanged",
                  parse_s, total_s, cpu, result->applied, result->duplicates, result->changes.size());
    }
  }
  return 0;
}
