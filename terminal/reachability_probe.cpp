#include "terminal/reachability_probe.hpp"

#include <uv.h>

#include <memory>

#include "transport/tls_link.hpp"

namespace tsunagu::terminal {
namespace {

struct ProbeRun;

struct Probe {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  ProbeRun* run = nullptr;
  ProbeResult* result = nullptr;
  bool finished = false;
};

struct ProbeRun {
  uv_loop_t loop{};
  uv_timer_t timer{};
  uint64_t started_ms = 0;
  size_t pending = 0;
  std::vector<std::unique_ptr<Probe>> probes;
};

void close_handle(uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

// The probe's answer; the last one stops the timer, so the loop ends.
void finish(Probe& probe, bool reachable) {
  if (probe.finished) return;
  probe.finished = true;
  ProbeRun& run = *probe.run;
  probe.result->reachable = reachable;
  probe.result->took = std::chrono::milliseconds(uv_now(&run.loop) - run.started_ms);
  close_handle(reinterpret_cast<uv_handle_t*>(&probe.tcp));
  if (--run.pending == 0) close_handle(reinterpret_cast<uv_handle_t*>(&run.timer));
}

}  // namespace

std::vector<ProbeResult> probe_nodes(const std::vector<proto::SocketAddress>& nodes, std::chrono::milliseconds timeout) {
  std::vector<ProbeResult> results(nodes.size());
  if (nodes.empty()) return results;
  ProbeRun run;
  uv_loop_init(&run.loop);
  run.started_ms = uv_now(&run.loop);
  run.pending = nodes.size();
  uv_timer_init(&run.loop, &run.timer);
  run.timer.data = &run;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto probe = std::make_unique<Probe>();
    probe->run = &run;
    probe->result = &results[i];
    probe->connect.data = probe.get();
    uv_tcp_init(&run.loop, &probe->tcp);
    run.probes.push_back(std::move(probe));
  }
  uv_timer_start(
      &run.timer,
      [](uv_timer_t* timer) {
        // What has not answered by now counts as unreachable.
        for (auto& probe : static_cast<ProbeRun*>(timer->data)->probes) finish(*probe, false);
      },
      static_cast<uint64_t>(timeout.count()), 0);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Probe& probe = *run.probes[i];
    sockaddr_storage address{};
    transport::to_sockaddr(nodes[i], &address);
    int started = uv_tcp_connect(&probe.connect, &probe.tcp, reinterpret_cast<const sockaddr*>(&address),
                                 [](uv_connect_t* request, int status) {
                                   // UV_ECANCELED after the timeout closed it: already finished.
                                   finish(*static_cast<Probe*>(request->data), status == 0);
                                 });
    if (started != 0) finish(probe, false);
  }
  uv_run(&run.loop, UV_RUN_DEFAULT);
  uv_loop_close(&run.loop);
  return results;
}

}  // namespace tsunagu::terminal
