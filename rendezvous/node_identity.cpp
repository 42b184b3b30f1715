// Identities of NodeCore (docs/security.md, "Identities"): one namespace, two
// kinds of ID. IDs inside an enrolled domain (EXT@DOMAIN) or under an enrolled
// number prefix belong to that domain's LAN agent and are never accounts:
// register and login refuse them, and a link logged in as such an ID (an
// account made before the domain was enrolled) loses its login at its next
// request, so it never gets an extension's powers (its mailbox, a caller ID
// that an edge policy trusts).
//
// Accounts end cleanly: `user passwd` and `user remove` (the admin command,
// another process on the same LMDB environment) move the account epoch on.
// Each request of a logged-in link checks its account (gone, or a generation
// other than at login: 401, a notice, the link closed), and every
// account_check_interval_ms the node reads the epoch and, when it moved,
// checks every logged-in link, so idle links end within that interval too.
// A removed ID cannot be registered again for removed_id_quarantine_days.
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

constexpr std::string_view account_ended_reason =
    "Unauthenticated: the account was removed or its password changed; log in again";

std::string agent_id_reason(const std::string& user_id, const std::string& route) {
  return "Forbidden: " + user_id + " is inside " + route +
         ", which belongs to a LAN agent: IDs there are its extensions, never accounts";
}
}  // namespace

bool NodeCore::refuse_agent_id(LinkId link, const proto::Message& request, const std::string& user_id) {
  Route route = find_route(user_id);
  if (route.storage_error) {
    reply_storage_error(link, request, *route.storage_error);
    return true;
  }
  if (!route.routed) return false;
  reply_error(link, request, sig::error::forbidden, agent_id_reason(user_id, route.route));
  return true;
}

bool NodeCore::session_still_valid(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  const std::string& user = *state.user;  // not used once end_session() may reset it
  if (Route route = find_route(user); route.routed) {
    reply_error(link, request, sig::error::forbidden, agent_id_reason(user, route.route));
    end_session(link, state, sig::notice_code::id_taken_by_agent, "this ID now belongs to a LAN agent", now);
    return false;
  }
  if (!account_holds(state)) {
    reply_error(link, request, sig::error::unauthenticated, account_ended_reason);
    end_session(link, state, sig::notice_code::account_ended, account_ended_reason, now);
    return false;
  }
  return true;
}

bool NodeCore::account_holds(const LinkState& state) {
  auto generation = accounts_.generation(*state.user);
  // A storage failure ends no logins (noted; the next check will tell).
  if (!generation) {
    note_storage_error(generation.error());
    return true;
  }
  return generation->has_value() && **generation == state.account_generation;
}

void NodeCore::check_accounts(Now now) {
  if (settings_.account_check_interval_ms == 0) return;
  deadlines_.schedule(now.mono_ms + settings_.account_check_interval_ms, DeadlineKind::account_check);
  auto epoch = accounts_.epoch();
  if (!epoch) return note_storage_error(epoch.error());
  if (*epoch == known_account_epoch_) return;
  known_account_epoch_ = *epoch;
  for (auto& [link, state] : links_)
    if (state.user && !account_holds(state)) end_session(link, state, sig::notice_code::account_ended, account_ended_reason, now);
}

bool NodeCore::refuse_removed_id(LinkId link, const proto::Message& request, const std::string& user_id, Now now) {
  auto removed = accounts_.removed_at(user_id);
  if (!removed) {
    reply_storage_error(link, request, removed.error());
    return true;
  }
  uint64_t held_until = removed->value_or(0) + uint64_t{settings_.removed_id_quarantine_days} * 86400;
  if (!removed->has_value() || now.unix_s >= held_until) return false;
  uint64_t days = (held_until - now.unix_s + 86399) / 86400;
  reply_error(link, request, sig::error::user_exists,
              "User Exists: " + user_id + " was removed recently and is held for " + std::to_string(days) +
                  " more day(s), so no one else reads what was meant for its owner");
  return true;
}

void NodeCore::end_session(LinkId link, LinkState& state, uint32_t code, std::string_view reason, Now now) {
  if (auto user = presence_.remove_link(link)) presence_ended(*user, now);
  set_link_user(state, std::nullopt);
  notice(link, code, reason);
  close(link, std::string(reason));
}

}  // namespace tsunagu::rendezvous
