// The ICE path a terminal reports once its call connected (call_path
// indication, ICE-PATH "LOCAL/REMOTE"; a page's call_path message, a LAN
// terminal's through its agent), kept for the call's end audit line
// (`path=`, docs/operator.md "Audit log"). Only a party of an accepted call
// reports; the first report holds, turned round to the caller's side when
// the callee sent it. Anything else is dropped without an answer, as for
// other indications.
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

constexpr size_t kMaxIcePathBytes = 32;

bool candidate_type(std::string_view word) {
  constexpr std::array<std::string_view, 4> types{"host", "srflx", "prflx", "relay"};
  for (auto type : types)
    if (word == type) return true;
  return false;
}

// "LOCAL/REMOTE" from the reporter's side -> the caller's side, or nullopt
// when it is not two candidate types.
std::optional<std::string> caller_side_path(std::string_view reported, bool from_caller) {
  if (reported.size() > kMaxIcePathBytes) return std::nullopt;
  auto slash = reported.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view local = reported.substr(0, slash), remote = reported.substr(slash + 1);
  if (!candidate_type(local) || !candidate_type(remote)) return std::nullopt;
  return from_caller ? std::string(reported) : std::string(remote) + "/" + std::string(local);
}

}  // namespace

void NodeCore::handle_call_path(LinkId link, LinkState& state, const proto::Message& indication) {
  if (caller_of(state) == nullptr && !state.agent_ready) return;  // a LAN agent relays its terminal's report
  const auto* id = indication.find(sig::attr::call_id);
  const auto* reported = indication.find(sig::attr::ice_path);
  if (id == nullptr || reported == nullptr) return;
  Call* call = calls_->find(std::string(proto::read_string(*id)));
  if (call == nullptr || call->state != sig::call_state::accepted || !call->path.empty()) return;
  bool from_caller = call->caller_link == link;
  if (!from_caller && call->callee_link != link) return;
  if (auto path = caller_side_path(proto::read_string(*reported), from_caller)) call->path = std::move(*path);
}

}  // namespace tsunagu::rendezvous
