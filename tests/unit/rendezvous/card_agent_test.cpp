#include "rendezvous/card_agent.hpp"

#include <doctest/doctest.h>

#include "proto/signalling.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {

AgentCallRequest holder_on_agent() {
  AgentCallRequest r;
  r.node_is_agent = true;
  r.route_kind = cards::RouteKind::agent;
  r.serial = 12;
  return r;
}

}  // namespace

TEST_CASE("connection agent: a holder without a login is admitted through an agent route") {
  CHECK(admit_agent_call(holder_on_agent()) == AgentCallRefusal::none);
  auto again = holder_on_agent();
  again.link_card_serial = 12;  // the same card's next call on the link
  CHECK(admit_agent_call(again) == AgentCallRefusal::none);
}

TEST_CASE("connection agent: a node that is not an agent wants a login") {
  auto r = holder_on_agent();
  r.node_is_agent = false;
  CHECK(admit_agent_call(r) == AgentCallRefusal::not_an_agent);
  r.logged_in = true;  // an ordinary card call, whatever the route
  CHECK(admit_agent_call(r) == AgentCallRefusal::none);
}

TEST_CASE("connection agent: without a login only an agent route of the card") {
  auto r = holder_on_agent();
  for (auto kind : {cards::RouteKind::internet, cards::RouteKind::premium}) {
    r.route_kind = kind;
    CHECK(admit_agent_call(r) == AgentCallRefusal::not_an_agent_route);
  }
  r.route_kind = std::nullopt;  // names nothing on the card
  CHECK(admit_agent_call(r) == AgentCallRefusal::not_an_agent_route);
  r.logged_in = true;  // a logged-in caller may name any route (it pays that route's tariff)
  r.route_kind = cards::RouteKind::internet;
  CHECK(admit_agent_call(r) == AgentCallRefusal::none);
}

TEST_CASE("connection agent: one card per link") {
  auto r = holder_on_agent();
  r.link_card_serial = 11;
  CHECK(admit_agent_call(r) == AgentCallRefusal::another_card);
  CHECK(std::string(agent_call_refusal_name(AgentCallRefusal::another_card)).find("one card per link") !=
        std::string::npos);
}

// That it is a valid user ID: node_cards_test.cpp (this library has no proto/).
TEST_CASE("connection agent: the caller ID is the card ID") {
  CHECK(agent_caller_id(cards::CardId{20261205, 7, 42}) == "card-20261205-0007-000042");
}

TEST_CASE("connection agent: the caller ID carries the prefix no account may take") {
  cards::CardId id{20261205, 7, 42};
  CHECK(agent_caller_id(id) == "card-20261205-0007-000042");
  CHECK(proto::card_holder_id(agent_caller_id(id)));
  CHECK_FALSE(proto::card_holder_id("cardholder"));
  CHECK_FALSE(proto::card_holder_id("alice"));
}
