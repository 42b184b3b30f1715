// Identities of NodeCore (docs/security.md, "Identities"): one namespace, two
// kinds of ID. IDs inside an enrolled domain (EXT@DOMAIN) or under an enrolled
// number prefix belong to that domain's LAN agent and are never accounts:
// register and login refuse them, and a link logged in as such an ID (an
// account made before the domain was enrolled) loses its login at its next
// request, so it never gets an extension's powers (its mailbox, a caller ID
// that an edge policy trusts).
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

std::string agent_id_reason(const std::string& user_id, const std::string& route) {
  return "Forbidden: " + user_id + " is inside " + route +
         ", which belongs to a LAN agent: IDs there are its extensions, never accounts";
}
}  // namespace

bool NodeCore::refuse_agent_id(LinkId link, const proto::Message& request, const std::string& user_id) {
  Route route = find_route(user_id);
  if (!route.routed) return false;
  reply_error(link, request, sig::error::forbidden, agent_id_reason(user_id, route.route));
  return true;
}

bool NodeCore::session_still_valid(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  const std::string user = *state.user;
  if (Route route = find_route(user); route.routed) {
    reply_error(link, request, sig::error::forbidden, agent_id_reason(user, route.route));
    end_session(link, state, "this ID now belongs to a LAN agent", now);
    return false;
  }
  return true;
}

void NodeCore::end_session(LinkId link, LinkState& state, std::string_view reason, Now now) {
  if (auto user = presence_.remove_link(link)) presence_ended(*user, now);
  state.user.reset();
  notice(link, reason);
  close(link, std::string(reason));
}

}  // namespace tsunagu::rendezvous
