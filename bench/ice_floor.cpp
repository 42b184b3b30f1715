// ice_floor: the ICE floor for benchmark 6. Two bare libnice agents in one
// process on 127.0.0.1 exchange credentials and candidates directly (SDP
// lines, as a signalling channel would carry them, but with no network in
// between) and connect; the controlling one then sends one datagram, the other
// echoes it.
//
// The agents are set up as terminal/ice_session.cpp sets up a call's agent:
// RFC 5245 compatibility, one stream with one component, UDP only (no ICE-TCP,
// no UPnP), the local address added explicitly, aggressive nomination unless
// --regular-nomination, datagram mode unless --reliable. Times, from the moment
// the caller starts gathering (as `tsunagu call`'s report counts from the
// moment its call's ICE session is created):
//   connected_ms: the controlling agent's component reaches CONNECTED;
//   first_byte_ms: the echo of its first datagram arrives back.
// Prints one JSON line with every iteration's times and their medians.
#include <nice/agent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <time.h>
#include <vector>

namespace {

constexpr guint component_id = 1;

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Side;

struct Round {
  double start_ms = 0, connected_ms = -1, first_byte_ms = -1;
  int gathered = 0;
  bool sent = false, failed = false;
  std::string failure;
  Side* sides[2] = {nullptr, nullptr};
};

struct Side {
  Round* round = nullptr;
  NiceAgent* agent = nullptr;
  guint stream = 0;
  bool controlling = false;
  Side* peer = nullptr;
};

void hand_over(Side* from, Side* to) {
  gchar *ufrag = nullptr, *password = nullptr;
  nice_agent_get_local_credentials(from->agent, from->stream, &ufrag, &password);
  nice_agent_set_remote_credentials(to->agent, to->stream, ufrag, password);
  g_free(ufrag);
  g_free(password);
  GSList* local = nice_agent_get_local_candidates(from->agent, from->stream, component_id);
  GSList* remote = nullptr;
  for (GSList* i = local; i != nullptr; i = i->next) {
    auto* candidate = static_cast<NiceCandidate*>(i->data);
    if (candidate->transport != NICE_CANDIDATE_TRANSPORT_UDP) continue;
    gchar* line = nice_agent_generate_local_candidate_sdp(from->agent, candidate);
    NiceCandidate* parsed = nice_agent_parse_remote_candidate_sdp(to->agent, to->stream, line);
    g_free(line);
    if (parsed != nullptr) remote = g_slist_append(remote, parsed);
  }
  g_slist_free_full(local, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  if (remote == nullptr || nice_agent_set_remote_candidates(to->agent, to->stream, component_id, remote) <= 0) {
    from->round->failed = true;
    from->round->failure = "no usable candidates";
  }
  g_slist_free_full(remote, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
}

void on_gathering_done(NiceAgent*, guint, gpointer data) {
  auto* side = static_cast<Side*>(data);
  Round* round = side->round;
  if (++round->gathered < 2) return;
  hand_over(round->sides[0], round->sides[1]);
  hand_over(round->sides[1], round->sides[0]);
}

void on_state(NiceAgent*, guint, guint, guint state, gpointer data) {
  auto* side = static_cast<Side*>(data);
  Round* round = side->round;
  if (state == NICE_COMPONENT_STATE_FAILED) {
    round->failed = true;
    round->failure = "ICE failed";
    return;
  }
  if (!side->controlling || round->sent) return;
  if (state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY) {
    round->connected_ms = now_ms() - round->start_ms;
    static const char probe[] = "first byte";
    if (nice_agent_send(side->agent, side->stream, component_id, sizeof probe, probe) > 0) round->sent = true;
  }
}

void on_receive(NiceAgent* agent, guint stream, guint component, guint length, gchar* bytes, gpointer data) {
  auto* side = static_cast<Side*>(data);
  if (!side->controlling) {
    nice_agent_send(agent, stream, component, length, bytes);  // echo
    return;
  }
  if (side->round->first_byte_ms < 0) side->round->first_byte_ms = now_ms() - side->round->start_ms;
}

bool make_side(GMainContext* context, Side& side, bool controlling, bool regular, bool reliable) {
  unsigned options = 0;
  if (reliable) options |= NICE_AGENT_OPTION_RELIABLE;
  if (regular) options |= NICE_AGENT_OPTION_REGULAR_NOMINATION;
  side.agent = nice_agent_new_full(context, NICE_COMPATIBILITY_RFC5245, static_cast<NiceAgentOption>(options));
  if (side.agent == nullptr) return false;
  side.controlling = controlling;
  g_object_set(side.agent, "controlling-mode", gboolean(controlling), "ice-tcp", gboolean(FALSE), "upnp",
               gboolean(FALSE), nullptr);
  NiceAddress local;
  nice_address_init(&local);
  if (!nice_address_set_from_string(&local, "127.0.0.1")) return false;
  if (!nice_agent_add_local_address(side.agent, &local)) return false;
  side.stream = nice_agent_add_stream(side.agent, 1);
  if (side.stream == 0) return false;
  g_signal_connect(side.agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), &side);
  g_signal_connect(side.agent, "component-state-changed", G_CALLBACK(on_state), &side);
  return nice_agent_attach_recv(side.agent, side.stream, component_id, context, on_receive, &side);
}

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 10;
  bool regular = false, reliable = false;
  double timeout_s = 10;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else if (arg == "--regular-nomination") {
      regular = true;
    } else if (arg == "--reliable") {
      reliable = true;
    } else if (arg == "--timeout" && i + 1 < argc) {
      timeout_s = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: ice_floor [--iterations N] [--regular-nomination] [--reliable] [--timeout S]\n"
                   "Connects two bare libnice agents on 127.0.0.1 N times and prints one JSON line.\n");
      return 2;
    }
  }
  if (iterations < 1 || iterations > 1000 || !(timeout_s > 0 && timeout_s <= 60)) {
    std::fprintf(stderr, "ice_floor: --iterations 1..1000, --timeout (0, 60]\n");
    return 2;
  }
  GMainContext* context = g_main_context_new();
  std::vector<double> connected, first_byte;
  std::string runs;
  int failures = 0;
  for (int it = 0; it < iterations; ++it) {
    Round round;
    Side caller, callee;
    caller.round = callee.round = &round;
    round.sides[0] = &caller;
    round.sides[1] = &callee;
    if (!make_side(context, caller, true, regular, reliable) || !make_side(context, callee, false, regular, reliable)) {
      std::fprintf(stderr, "ice_floor: libnice agent set-up failed\n");
      return 1;
    }
    round.start_ms = now_ms();
    nice_agent_gather_candidates(caller.agent, caller.stream);
    nice_agent_gather_candidates(callee.agent, callee.stream);
    double deadline = round.start_ms + timeout_s * 1e3;
    while (round.first_byte_ms < 0 && !round.failed && now_ms() < deadline) g_main_context_iteration(context, TRUE);
    if (round.first_byte_ms < 0) {
      ++failures;
      std::fprintf(stderr, "ice_floor: iteration %d: %s\n", it, round.failed ? round.failure.c_str() : "timed out");
    } else {
      connected.push_back(round.connected_ms);
      first_byte.push_back(round.first_byte_ms);
      char item[96];
      std::snprintf(item, sizeof item, "%s[%.3f, %.3f]", runs.empty() ? "" : ", ", round.connected_ms,
                    round.first_byte_ms);
      runs += item;
    }
    nice_agent_remove_stream(caller.agent, caller.stream);
    nice_agent_remove_stream(callee.agent, callee.stream);
    g_object_unref(caller.agent);
    g_object_unref(callee.agent);
    // Let the agents' pending sources run out before the next round.
    for (int k = 0; k < 100 && g_main_context_iteration(context, FALSE); ++k) {
    }
  }
  g_main_context_unref(context);
  std::printf("{\"iterations\": %d, \"failures\": %d, \"nomination\": \"%s\", \"mode\": \"%s\", "
              "\"connected_ms_median\": %.3f, \"first_byte_ms_median\": %.3f, \"runs\": [%s]}\n",
              iterations, failures, regular ? "regular" : "aggressive", reliable ? "reliable" : "datagram",
              median(connected), median(first_byte), runs.c_str());
  return failures == iterations ? 1 : 0;
}
