// Browser calls in NodeCore: a web session's link becomes a presence that
// can be rung, and each party's media profile travels with the call, so a
// terminal knows to speak WebRTC's profile to a browser. Everything else
// (limits, busy, consent timeout, TURN, voicemail) is the call flow of
// node_calls.cpp, unchanged: a browser's session is one more link to it.
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace sig = tsunagu::proto;

Expected<void, std::string> NodeCore::take_web_presence(LinkId link, Now now) {
  now_ = now;
  auto it = links_.find(link);
  if (it == links_.end() || !it->second.user) return Unexpected(std::string("the session is not logged in"));
  LinkState& state = it->second;
  const std::string user = *state.user;
  if (const PresenceRow* row = presence_.find(user); row != nullptr && row->link != link) {
    // A terminal keeps the presence: a page does not displace it.
    return Unexpected(std::string("you are online at a terminal; calls ring there"));
  }
  if (state.role == sig::link_role::presence) return {};
  presence_.login(user, link, {}, state.observed, now.mono_ms);
  state.role = sig::link_role::presence;
  state.media_profile = sig::media_profile::webrtc;
  last_seen_unix_.erase(user);
  presence_changed(user);
  return {};
}

void NodeCore::drop_web_presence(LinkId link, bool end_calls, Now now) {
  now_ = now;
  auto it = links_.find(link);
  if (it == links_.end()) return;
  // The page that placed or answered them is gone: as for a lost link (410 to the other party).
  if (end_calls) calls_link_closed(link);
  if (it->second.role != sig::link_role::presence || it->second.media_profile != sig::media_profile::webrtc) return;
  it->second.role = sig::link_role::query;
  it->second.media_profile = sig::media_profile::native;
  if (auto user = presence_.remove_link(link)) presence_ended(*user, now);
}

void NodeCore::note_media_profiles(Call& call, const proto::Message& request, const CallTarget& target) {
  if (const auto* profile = request.find(sig::attr::media_profile))
    call.caller_profile = proto::read_u32(*profile).value_or(0) == sig::media_profile::webrtc ? sig::media_profile::webrtc
                                                                                             : sig::media_profile::native;
  auto callee = links_.find(target.link);
  call.callee_profile = !target.via_agent && callee != links_.end() ? callee->second.media_profile : sig::media_profile::native;
}

void NodeCore::add_other_profile(proto::MessageBuilder& builder, const Call& call, LinkId party) const {
  builder.add_u32(sig::attr::media_profile, party == call.caller_link ? call.callee_profile : call.caller_profile);
}

bool NodeCore::own_ring_refusal(LinkId callee_link) const {
  auto it = links_.find(callee_link);
  return it != links_.end() && it->second.media_profile == sig::media_profile::webrtc;
}

}  // namespace tsunagu::rendezvous
