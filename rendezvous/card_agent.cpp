#include "rendezvous/card_agent.hpp"

#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {

const char* agent_call_refusal_name(AgentCallRefusal refusal) {
  switch (refusal) {
    case AgentCallRefusal::none: return "admitted";
    case AgentCallRefusal::not_an_agent: return "this node is not a connection agent: log in first";
    case AgentCallRefusal::not_an_agent_route:
      return "without a login, CARD-ROUTE must name one of the card's connection agents";
    case AgentCallRefusal::another_card: return "this link placed a call on another card: one card per link";
  }
  return "unknown";
}

AgentCallRefusal admit_agent_call(const AgentCallRequest& request) {
  if (request.logged_in) return AgentCallRefusal::none;
  if (!request.node_is_agent) return AgentCallRefusal::not_an_agent;
  if (request.route_kind != cards::RouteKind::agent) return AgentCallRefusal::not_an_agent_route;
  // The link's caller ID is the first card's: a second card on it would place
  // calls under the first card's name.
  if (request.link_card_serial && *request.link_card_serial != request.serial) return AgentCallRefusal::another_card;
  return AgentCallRefusal::none;
}

std::string agent_caller_id(const cards::CardId& card_id) {
  return std::string(proto::card_holder_id_prefix) + card_id.text();
}

}  // namespace tsunagu::rendezvous
