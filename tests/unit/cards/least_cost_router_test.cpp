#include "cards/least_cost_router.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "cards/call_charge.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

using namespace std::chrono_literals;
using test::point;
using TimePoint = LeastCostRouter::TimePoint;

const TimePoint t0{std::chrono::hours(1000)};

// Area A: a-cheap costs 1 (5 from 08:00 to 20:00), a-mid costs 3, a premium
// route that costs 2 but reaches only "+81", an agent at 9. Area B: one point.
Card routing_card() {
  test::Issuer issuer;
  Card card = test::sample_card(issuer);
  Area a;
  a.code = "A";
  a.internet = {point("a-cheap", 1, {TariffBand{480, 1200, 5}}), point("a-mid", 3)};
  a.premium = {point("a-premium", 2, {}, {"+81"})};
  a.agents = {point("a-agent", 9)};
  Area b;
  b.code = "B";
  b.internet = {point("b-net", 3)};
  card.areas = {a, b};
  return card;
}

std::string chosen(LeastCostRouter& router, const Card& card, const RouteRequest& request, TimePoint now) {
  auto choice = router.choose(card, request, now);
  return choice ? choice->point->name : "";
}

}  // namespace

TEST_CASE("lcr: the cheapest access point of the terminal's area that reaches the destination") {
  Card card = routing_card();
  LeastCostRouter router;
  RouteRequest night{"A", "alice@example.net", 60};
  auto ranked = router.rank(card, night, t0);
  REQUIRE(ranked.size() == 3);  // the premium route does not reach alice
  CHECK(ranked[0].point->name == "a-cheap");
  CHECK(ranked[0].cost_per_minute == 1);
  CHECK(ranked[1].point->name == "a-mid");
  CHECK(ranked[2].point->name == "a-agent");
  CHECK(ranked[2].kind == RouteKind::agent);
  CHECK(chosen(router, card, night, t0) == "a-cheap");
  CHECK(chosen(router, card, RouteRequest{"B", "alice", 60}, t0) == "b-net");
  CHECK(chosen(router, card, RouteRequest{"C", "alice", 60}, t0) == "");
}

TEST_CASE("lcr: the time of day picks the tariff; a premium route wins where it is cheapest") {
  Card card = routing_card();
  LeastCostRouter router;
  // 10:00: a-cheap costs 5, so a-mid (3) is cheapest for alice...
  CHECK(router.rank(card, RouteRequest{"A", "alice", 600}, t0)[0].point->name == "a-mid");
  // ...and the premium route (2) for a "+81" number.
  auto ranked = router.rank(card, RouteRequest{"A", "+81312345678", 600}, t0);
  CHECK(ranked[0].point->name == "a-premium");
  CHECK(ranked[0].kind == RouteKind::premium);
  // At 21:00 a-cheap is back to 1.
  CHECK(router.rank(card, RouteRequest{"A", "+81312345678", 1260}, t0)[0].point->name == "a-cheap");
}

TEST_CASE("lcr: the choice follows the hour's tariff from call to call, with the clock injected") {
  // Two relays whose tariffs flip at 08:00 and 20:00: flip-day is cheap by
  // night, flip-night by day ([0050]: least cost by time of day).
  test::Issuer issuer;
  Card card = test::sample_card(issuer);
  Area x;
  x.code = "X";
  x.internet = {point("flip-day", 1, {TariffBand{480, 1200, 4}}), point("flip-night", 4, {TariffBand{480, 1200, 1}})};
  card.areas = {x};
  LeastCostRouter router;  // one router across calls: the hysteresis must not hold the old hour's choice
  auto at = [&](std::string_view clock, TimePoint now) {
    auto minute = routing_minute(/*now_unix: 03:00*/ 3 * 3600, clock);
    REQUIRE(minute);
    return chosen(router, card, RouteRequest{"X", "bob", *minute}, now);
  };
  CHECK(at("", t0) == "flip-day");  // the real clock: 03:00
  CHECK(at("07:59", t0 + 1s) == "flip-day");
  CHECK(at("08:00", t0 + 2s) == "flip-night");
  CHECK(at("19:59", t0 + 3s) == "flip-night");
  CHECK(at("20:00", t0 + 4s) == "flip-day");
  // The hook's text is checked: a malformed one is not taken as midnight.
  for (const char* bad : {"8:00", "24:00", "12:60", "noon", "12:00:00"}) {
    INFO(bad);
    CHECK_FALSE(routing_minute(0, bad));
  }
  CHECK(routing_minute(86400 + 61, "") == 1);
}

TEST_CASE("lcr: a failed access point falls back to the next cheapest at once") {
  Card card = routing_card();
  LeastCostRouter router;
  RouteRequest request{"A", "alice", 60};
  CHECK(chosen(router, card, request, t0) == "a-cheap");
  router.report_unreachable("a-cheap", t0);
  CHECK(chosen(router, card, request, t0) == "a-mid");
  router.report_unreachable("a-mid", t0 + 1s);
  CHECK(chosen(router, card, request, t0 + 1s) == "a-agent");
  router.report_unreachable("a-agent", t0 + 2s);
  CHECK(chosen(router, card, request, t0 + 2s) == "");
}

TEST_CASE("lcr: a failed point is retried after the failure hold") {
  Card card = routing_card();
  LeastCostRouter router(RouterSettings{60s, 30s, 1});
  RouteRequest request{"A", "alice", 60};
  router.report_unreachable("a-cheap", t0);
  router.report_unreachable("a-mid", t0);
  router.report_unreachable("a-agent", t0);
  CHECK(chosen(router, card, request, t0 + 59s) == "");
  // All are usable again, none settled: the cheapest is tried.
  CHECK(chosen(router, card, request, t0 + 60s) == "a-cheap");
}

TEST_CASE("lcr: a recovered cheaper point displaces the current choice only after the recovery hold") {
  Card card = routing_card();
  LeastCostRouter router(RouterSettings{60s, 30s, 1});
  RouteRequest request{"A", "alice", 60};
  router.report_unreachable("a-cheap", t0);
  CHECK(chosen(router, card, request, t0) == "a-mid");
  router.report_reachable("a-cheap", t0 + 10s);
  CHECK(chosen(router, card, request, t0 + 10s) == "a-mid");
  CHECK(chosen(router, card, request, t0 + 39s) == "a-mid");
  CHECK(chosen(router, card, request, t0 + 40s) == "a-cheap");
}

TEST_CASE("lcr: a flapping cheaper point does not make the choice flap") {
  Card card = routing_card();
  LeastCostRouter router(RouterSettings{60s, 30s, 1});
  RouteRequest request{"A", "alice", 60};
  router.report_unreachable("a-cheap", t0);
  CHECK(chosen(router, card, request, t0) == "a-mid");
  std::vector<std::string> choices;
  for (int i = 1; i <= 20; ++i) {
    TimePoint now = t0 + std::chrono::seconds(10 * i);
    if (i % 2 == 1)
      router.report_reachable("a-cheap", now);
    else
      router.report_unreachable("a-cheap", now);
    choices.push_back(chosen(router, card, request, now));
  }
  CHECK(std::count(choices.begin(), choices.end(), "a-mid") == 20);
  // Once it stays up for the recovery hold, it is chosen.
  router.report_reachable("a-cheap", t0 + 300s);
  CHECK(chosen(router, card, request, t0 + 330s) == "a-cheap");
}

TEST_CASE("lcr: the current choice is kept unless another is cheaper by the switch margin") {
  Card card = routing_card();
  card.areas[0].internet[1].cost_per_minute = 2;  // a-mid: 2
  LeastCostRouter router(RouterSettings{60s, 30s, 2});
  RouteRequest request{"A", "alice", 60};
  router.report_unreachable("a-cheap", t0);
  CHECK(chosen(router, card, request, t0) == "a-mid");
  router.report_reachable("a-cheap", t0 + 1s);
  // a-cheap is settled at t0 + 31 s, but 1 is not cheaper than 2 by the margin of 2.
  CHECK(chosen(router, card, request, t0 + 100s) == "a-mid");
  // With a-mid at 3 the gap is 2: switch.
  card.areas[0].internet[1].cost_per_minute = 3;
  CHECK(chosen(router, card, request, t0 + 101s) == "a-cheap");
}

TEST_CASE("lcr: a card moved to another area follows its area") {
  Card card = routing_card();
  LeastCostRouter router;
  CHECK(chosen(router, card, RouteRequest{"A", "alice", 60}, t0) == "a-cheap");
  CHECK(chosen(router, card, RouteRequest{"B", "alice", 60}, t0) == "b-net");
  CHECK(router.current() == "b-net");
}

}  // namespace tsunagu::cards
