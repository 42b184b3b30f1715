#include "terminal/reachability_probe.hpp"

#include <uv.h>

#include <memory>

#include "proto/stun_message.hpp"
#include "security/random.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::terminal {
namespace {

constexpr uint64_t stun_resend_ms = 500;

struct ProbeRun;

struct Probe {
  uv_tcp_t tcp{};
  uv_udp_t udp{};
  uv_connect_t connect{};
  ProbeTarget::Kind kind = ProbeTarget::Kind::tcp_connect;
  sockaddr_storage address{};
  proto::TransactionId transaction;
  Bytes request;  // the Binding request, sent again until answered
  std::byte receive_buffer[1500];
  ProbeRun* run = nullptr;
  ProbeResult* result = nullptr;
  bool finished = false;

  uv_handle_t* handle() {
    return kind == ProbeTarget::Kind::tcp_connect ? reinterpret_cast<uv_handle_t*>(&tcp)
                                                  : reinterpret_cast<uv_handle_t*>(&udp);
  }
};

struct ProbeRun {
  uv_loop_t loop{};
  uv_timer_t timer{};
  uv_timer_t resend{};
  uint64_t started_ms = 0;
  size_t pending = 0;
  std::vector<std::unique_ptr<Probe>> probes;
};

void close_handle(uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, nullptr);
}

// The probe's answer; the last one stops the timers, so the loop ends.
void finish(Probe& probe, bool reachable) {
  if (probe.finished) return;
  probe.finished = true;
  ProbeRun& run = *probe.run;
  probe.result->reachable = reachable;
  probe.result->took = std::chrono::milliseconds(uv_now(&run.loop) - run.started_ms);
  close_handle(probe.handle());
  if (--run.pending == 0) {
    close_handle(reinterpret_cast<uv_handle_t*>(&run.timer));
    close_handle(reinterpret_cast<uv_handle_t*>(&run.resend));
  }
}

void send_binding(Probe& probe) {
  uv_buf_t buffer = uv_buf_init(reinterpret_cast<char*>(probe.request.data()), static_cast<unsigned>(probe.request.size()));
  // A send that fails now (EAGAIN) is tried again by the resend timer.
  uv_udp_try_send(&probe.udp, &buffer, 1, reinterpret_cast<const sockaddr*>(&probe.address));
}

void start_tcp(Probe& probe) {
  uv_tcp_init(&probe.run->loop, &probe.tcp);
  probe.connect.data = &probe;
  int started = uv_tcp_connect(&probe.connect, &probe.tcp, reinterpret_cast<const sockaddr*>(&probe.address),
                               [](uv_connect_t* request, int status) {
                                 // UV_ECANCELED after the timeout closed it: already finished.
                                 finish(*static_cast<Probe*>(request->data), status == 0);
                               });
  if (started != 0) finish(probe, false);
}

void start_stun(Probe& probe) {
  uv_udp_init(&probe.run->loop, &probe.udp);
  probe.udp.data = &probe;
  // Bound in the relay's family (an unbound handle would take 0.0.0.0).
  sockaddr_storage any{};
  any.ss_family = probe.address.ss_family;
  if (uv_udp_bind(&probe.udp, reinterpret_cast<const sockaddr*>(&any), 0) != 0) return finish(probe, false);
  security::random_bytes(std::span<std::byte>(probe.transaction.bytes));
  probe.request =
      proto::MessageBuilder(proto::MessageClass::request, proto::method_binding, probe.transaction).finish();
  int started = uv_udp_recv_start(
      &probe.udp,
      [](uv_handle_t* handle, size_t, uv_buf_t* buffer) {
        auto* self = static_cast<Probe*>(handle->data);
        *buffer = uv_buf_init(reinterpret_cast<char*>(self->receive_buffer), sizeof self->receive_buffer);
      },
      [](uv_udp_t* udp, ssize_t n, const uv_buf_t* buffer, const sockaddr*, unsigned) {
        auto* self = static_cast<Probe*>(udp->data);
        if (n < 0) return finish(*self, false);  // e.g. ICMP port unreachable reported on the socket
        if (n == 0) return;
        auto decoded = proto::decode(ByteView(reinterpret_cast<const std::byte*>(buffer->base), static_cast<size_t>(n)));
        if (!decoded || decoded->message.transaction_id != self->transaction ||
            decoded->message.message_class == proto::MessageClass::request ||
            decoded->message.message_class == proto::MessageClass::indication)
          return;  // not the answer to this probe
        finish(*self, true);
      });
  if (started != 0) return finish(probe, false);
  send_binding(probe);
}

}  // namespace

std::vector<ProbeResult> probe_targets(const std::vector<ProbeTarget>& targets, std::chrono::milliseconds timeout) {
  std::vector<ProbeResult> results(targets.size());
  if (targets.empty()) return results;
  ProbeRun run;
  uv_loop_init(&run.loop);
  run.started_ms = uv_now(&run.loop);
  run.pending = targets.size();
  uv_timer_init(&run.loop, &run.timer);
  uv_timer_init(&run.loop, &run.resend);
  run.timer.data = &run;
  run.resend.data = &run;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto probe = std::make_unique<Probe>();
    probe->run = &run;
    probe->result = &results[i];
    probe->kind = targets[i].kind;
    transport::to_sockaddr(targets[i].address, &probe->address);
    run.probes.push_back(std::move(probe));
  }
  uv_timer_start(
      &run.timer,
      [](uv_timer_t* timer) {
        // What has not answered by now counts as unreachable.
        for (auto& probe : static_cast<ProbeRun*>(timer->data)->probes) finish(*probe, false);
      },
      static_cast<uint64_t>(timeout.count()), 0);
  uv_timer_start(
      &run.resend,
      [](uv_timer_t* timer) {
        for (auto& probe : static_cast<ProbeRun*>(timer->data)->probes)
          if (!probe->finished && probe->kind == ProbeTarget::Kind::stun_binding) send_binding(*probe);
      },
      stun_resend_ms, stun_resend_ms);
  // Handles are initialised before any can finish: the last finish closes the timers.
  for (auto& probe : run.probes) {
    if (probe->kind == ProbeTarget::Kind::tcp_connect) start_tcp(*probe);
    else start_stun(*probe);
  }
  uv_run(&run.loop, UV_RUN_DEFAULT);
  uv_loop_close(&run.loop);
  return results;
}

}  // namespace tsunagu::terminal
