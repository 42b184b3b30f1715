// What the terminal's router keeps between calls (cards/route_memory.*, and
// LeastCostRouter::remember/recall): each `tsunagu call` is a process of its
// own, so the failure hold and the hysteresis live in a file.
#include "cards/route_memory.hpp"

#include <doctest/doctest.h>

#include "cards/least_cost_router.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

using namespace std::chrono_literals;
using TimePoint = LeastCostRouter::TimePoint;

// Area A: a-net and a-alt both cost 2 (near-equal), a-dear costs 5.
Card memory_card() {
  test::Issuer issuer;
  Card card = test::sample_card(issuer);
  Area a;
  a.code = "A";
  a.internet = {test::point("a-net", 2), test::point("a-alt", 2), test::point("a-dear", 5)};
  card.areas = {a};
  return card;
}

std::string chosen(LeastCostRouter& router, const Card& card, TimePoint now) {
  auto choice = router.choose(card, RouteRequest{"A", "bob", 600}, now);
  return choice ? choice->point->name : "";
}

}  // namespace

TEST_CASE("route memory: text round-trips, names with spaces included") {
  RouteMemory memory;
  memory.current = "kansai net";
  memory.points = {{"kansai net", 1'796'000'000, 0}, {"kanto-net", 1'796'000'010, 1'796'000'020}};
  auto parsed = parse_route_memory(route_memory_text(memory));
  REQUIRE(parsed.has_value());
  CHECK(*parsed == memory);
  auto empty = parse_route_memory(route_memory_text(RouteMemory{}));
  REQUIRE(empty.has_value());
  CHECK(*empty == RouteMemory{});
}

TEST_CASE("route memory: another header, a malformed line, a cut file, too many points or bytes are refused") {
  for (const char* bad : {"", "tsunagu-routes 2\n", "tsunagu-routes 1", "tsunagu-routes 1\ncurrent\n",
                          "tsunagu-routes 1\ncurrent\ta\ncurrent\tb\n", "tsunagu-routes 1\npoint\ta\t1\n",
                          "tsunagu-routes 1\npoint\ta\t-1\t0\n", "tsunagu-routes 1\npoint\ta\t1\t0\textra\n",
                          "tsunagu-routes 1\npoint\ta\tx\t0\n", "tsunagu-routes 1\nroute\ta\n",
                          "tsunagu-routes 1\npoint\t\t1\t0\n", "tsunagu-routes 1\ncurrent\ta\x01\n"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_route_memory(bad).has_value());
  }
  std::string many = "tsunagu-routes 1\n";
  for (size_t i = 0; i <= max_route_memory_points; ++i) many += "point\tp" + std::to_string(i) + "\t1\t0\n";
  CHECK_FALSE(parse_route_memory(many).has_value());
  std::string large = "tsunagu-routes 1\n" + std::string(max_route_memory_size, 'x');
  CHECK_FALSE(parse_route_memory(large).has_value());
}

TEST_CASE("route memory: a failure remembered by one call is held by the next, and then not chosen back at once") {
  Card card = memory_card();
  const TimePoint first_run{std::chrono::hours(5)};
  LeastCostRouter one;
  CHECK(chosen(one, card, first_run) == "a-net");
  one.report_unreachable("a-net", first_run);
  CHECK(chosen(one, card, first_run) == "a-alt");
  RouteMemory kept = one.remember(first_run, 1'796'000'000);
  CHECK(kept.current == "a-alt");
  REQUIRE(kept.points.size() == 1);
  CHECK(kept.points[0].failed_at == 1'796'000'000);

  // The next process, 20 s later, on a steady clock of its own.
  const TimePoint second_run{std::chrono::hours(900)};
  LeastCostRouter two;
  two.recall(*parse_route_memory(route_memory_text(kept)), second_run, 1'796'000'020);
  auto ranked = two.rank(card, RouteRequest{"A", "bob", 600}, second_run);
  REQUIRE(ranked.size() == 2);  // a-net still in its failure hold
  CHECK(ranked[0].point->name == "a-alt");
  CHECK(chosen(two, card, second_run) == "a-alt");
  // After the hold a-net is usable again, but a-alt (as cheap) stays: no flapping between equal routes.
  two.report_reachable("a-net", second_run + 60s);
  CHECK(chosen(two, card, second_run + 61s) == "a-alt");
  CHECK(chosen(two, card, second_run + 200s) == "a-alt");
}

TEST_CASE("route memory: settled points are forgotten; a clock set back counts as now") {
  Card card = memory_card();
  const TimePoint t{std::chrono::hours(5)};
  LeastCostRouter router;
  router.report_unreachable("a-net", t);
  router.report_reachable("a-net", t + 1s);
  CHECK(router.remember(t + 2s, 1000).points.size() == 1);   // reachable, not settled yet
  CHECK(router.remember(t + 40s, 1038).points.empty());      // settled after recovery_hold
  RouteMemory future;
  future.points = {{"a-net", 5000, 0}};
  LeastCostRouter recalled;
  recalled.recall(future, t, 1000);
  auto ranked = recalled.rank(card, RouteRequest{"A", "bob", 600}, t);
  CHECK(ranked.size() == 2);  // failed "now": held
}

}  // namespace tsunagu::cards
