// RequestTracker: matching by transaction ID, per-request deadlines, the
// next-deadline query, unknown IDs, and a lost link failing each request once.
#include "transport/request_tracker.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace tsunagu;
using transport::RequestFailure;
using transport::RequestTracker;

namespace {

proto::TransactionId id_of(uint8_t n) {
  proto::TransactionId id{};
  id.bytes[11] = std::byte{n};
  return id;
}

// Records each handler call as (request number, failure).
struct Calls {
  std::vector<std::pair<int, RequestFailure>> seen;
  RequestTracker::Handler handler(int n) {
    return [this, n](const proto::Message* response, RequestFailure failure) {
      CHECK((response != nullptr) == (failure == RequestFailure::none));
      seen.emplace_back(n, failure);
    };
  }
};

proto::Message response_to(const proto::TransactionId& id) {
  proto::Message message;
  message.message_class = proto::MessageClass::success;
  message.transaction_id = id;
  return message;
}

}  // namespace

TEST_CASE("request tracker: a response is matched to its request by transaction ID") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 1000, calls.handler(1)));
  REQUIRE(tracker.add(id_of(2), 1000, calls.handler(2)));
  auto handler = tracker.take(id_of(2));
  REQUIRE(handler);
  auto response = response_to(id_of(2));
  handler(&response, RequestFailure::none);
  CHECK(calls.seen == std::vector<std::pair<int, RequestFailure>>{{2, RequestFailure::none}});
  CHECK(tracker.size() == 1);
}

TEST_CASE("request tracker: an unknown or repeated ID matches nothing") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 1000, calls.handler(1)));
  CHECK_FALSE(tracker.take(id_of(9)));
  CHECK(tracker.take(id_of(1)));
  CHECK_FALSE(tracker.take(id_of(1)));  // a duplicate response
  CHECK(tracker.empty());
}

TEST_CASE("request tracker: an ID already in flight is refused and the first request is kept") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 1000, calls.handler(1)));
  CHECK_FALSE(tracker.add(id_of(1), 50, calls.handler(2)));
  CHECK(tracker.size() == 1);
  CHECK(tracker.next_deadline() == 1000);
  auto expired = tracker.take_expired(500);
  CHECK(expired.empty());
}

TEST_CASE("request tracker: requests time out at their own deadlines, earliest first") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 300, calls.handler(1)));
  REQUIRE(tracker.add(id_of(2), 100, calls.handler(2)));
  REQUIRE(tracker.add(id_of(3), 200, calls.handler(3)));
  CHECK(tracker.next_deadline() == 100);
  CHECK(tracker.take_expired(99).empty());
  auto expired = tracker.take_expired(200);  // a deadline equal to now has passed
  REQUIRE(expired.size() == 2);
  for (auto& handler : expired) handler(nullptr, RequestFailure::timed_out);
  CHECK(calls.seen ==
        std::vector<std::pair<int, RequestFailure>>{{2, RequestFailure::timed_out}, {3, RequestFailure::timed_out}});
  CHECK(tracker.next_deadline() == 300);
  CHECK_FALSE(tracker.take(id_of(2)));  // a late response finds nothing
}

TEST_CASE("request tracker: a matched request no longer counts for the next deadline") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 100, calls.handler(1)));
  REQUIRE(tracker.add(id_of(2), 400, calls.handler(2)));
  CHECK(tracker.take(id_of(1)));
  CHECK(tracker.next_deadline() == 400);
  CHECK(tracker.take_expired(399).empty());
  CHECK(tracker.take(id_of(2)));
  CHECK_FALSE(tracker.next_deadline().has_value());
}

TEST_CASE("request tracker: a lost link fails every pending request once") {
  RequestTracker tracker;
  Calls calls;
  for (uint8_t n = 1; n <= 3; ++n) REQUIRE(tracker.add(id_of(n), 100 * n, calls.handler(n)));
  auto all = tracker.take_all();
  REQUIRE(all.size() == 3);
  for (auto& handler : all) handler(nullptr, RequestFailure::link_lost);
  CHECK(calls.seen.size() == 3);
  CHECK(tracker.empty());
  CHECK(tracker.take_all().empty());         // not a second time
  CHECK(tracker.take_expired(10'000).empty());  // nor as a timeout
  CHECK_FALSE(tracker.next_deadline().has_value());
}

TEST_CASE("request tracker: a handler may add a request while the expired ones are run") {
  RequestTracker tracker;
  Calls calls;
  REQUIRE(tracker.add(id_of(1), 100, [&](const proto::Message*, RequestFailure) {
    CHECK(tracker.add(id_of(2), 50, calls.handler(2)));  // a retry, already overdue
  }));
  for (auto& handler : tracker.take_expired(100)) handler(nullptr, RequestFailure::timed_out);
  CHECK(tracker.size() == 1);
  CHECK(tracker.next_deadline() == 50);
  CHECK(tracker.take_expired(100).size() == 1);
}
