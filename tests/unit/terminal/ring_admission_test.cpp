// Issue 11 §5: a LAN host could hold all 32 ring slots of a LAN terminal, and
// any LAN address could connect to it.
#include <doctest/doctest.h>

#include "terminal/ring_admission.hpp"

using namespace tsunagu::terminal;
using tsunagu::proto::SocketAddress;
using Decision = RingAdmission::Decision;

namespace {
const SocketAddress agent = SocketAddress::v4({10, 0, 0, 1}, 40000);
const SocketAddress host = SocketAddress::v4({10, 0, 0, 66}, 50000);
}  // namespace

TEST_CASE("ring admission: with --agent-address only the agent's IP is admitted, whatever its port") {
  RingAdmission admission(RingAdmission::Policy{{SocketAddress::v4({10, 0, 0, 1}, 0)}, 32, 4});
  CHECK(admission.open(host) == Decision::not_agent_address);
  CHECK(admission.open(SocketAddress::v4({10, 0, 0, 1}, 41234)) == Decision::admit);
  CHECK(admission.open(SocketAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 1)) ==
        Decision::not_agent_address);
  CHECK(admission.open_connections() == 1);
}

TEST_CASE("ring admission: one LAN host cannot hold more than its share of unauthenticated slots") {
  RingAdmission admission(RingAdmission::Policy{{}, 32, 4});
  for (int i = 0; i < 4; ++i) REQUIRE(admission.open(host) == Decision::admit);
  CHECK(admission.open(host) == Decision::source_full);
  CHECK(admission.open(agent) == Decision::admit);  // the agent still gets in
  admission.closed(host, false);
  CHECK(admission.open(host) == Decision::admit);  // a closed one gives its place back
}

TEST_CASE("ring admission: authenticated connections do not count against their source, and the total is capped") {
  RingAdmission admission(RingAdmission::Policy{{}, 6, 2});
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    REQUIRE(admission.open(agent) == Decision::admit);
    admission.authenticated(agent);  // calls from the agent: one connection each
  }
  CHECK(admission.open(host) == Decision::admit);
  CHECK(admission.open(host) == Decision::server_full);
  admission.closed(agent, true);
  CHECK(admission.open(host) == Decision::admit);  // host: 2 pending, the total 6 again
  CHECK(admission.open(agent) == Decision::server_full);
  CHECK(admission.open_connections() == 6);
}
