// A node acting as a connection agent (seed 002, claims 6-7, [0051]-[0056]):
// it places calls for a card holder who has no account on it. The holder's
// terminal connects, skips the login, and sends the first call request with
// the card, its password and an agent route of the card; the node checks the
// card as for any card call and places the call under a caller ID made from
// the card ID. Pure: the node core (node_cards.cpp) passes in what it knows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cards/card.hpp"
#include "cards/least_cost_router.hpp"

namespace tsunagu::rendezvous {

enum class AgentCallRefusal : uint8_t {
  none,
  not_an_agent,        // this node is not a connection agent ([cards] connection_agent): log in first
  not_an_agent_route,  // the route named (CARD-ROUTE) is not one of the card's connection agents
  another_card,        // the link placed a call on another card before: one card per link
};
const char* agent_call_refusal_name(AgentCallRefusal refusal);

struct AgentCallRequest {
  bool node_is_agent = false;
  bool logged_in = false;                        // the link logged in to an account: an ordinary card call
  std::optional<cards::RouteKind> route_kind;    // of CARD-ROUTE; nullopt: it names no access point on the card
  std::optional<uint64_t> link_card_serial;      // the card this link placed a call on before, if any
  uint64_t serial = 0;                           // the card presented now
};

// Whether a card call may be placed on this link without a login. A
// logged-in link is always none (its card call is the ordinary kind).
AgentCallRefusal admit_agent_call(const AgentCallRequest& request);

// The caller ID a connection agent places a holder's call under: "card-" and
// the card ID ("card-20261205-0007-000042"), a valid user ID the callee sees.
std::string agent_caller_id(const cards::CardId& card_id);

}  // namespace tsunagu::rendezvous
