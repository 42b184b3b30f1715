#include <doctest/doctest.h>

#include "rendezvous/deadline_queue.hpp"

using namespace tsunagu::rendezvous;

TEST_CASE("deadline queue: earliest first, one deadline per (kind, key), moved by scheduling again") {
  DeadlineQueue queue;
  CHECK(queue.empty());
  CHECK_FALSE(queue.next().has_value());
  queue.schedule(500, DeadlineKind::login, link_key(1));
  queue.schedule(300, DeadlineKind::ring, "call-a");
  queue.schedule(400, DeadlineKind::login, link_key(2));
  CHECK(queue.size() == 3);
  CHECK(queue.next() == 300);
  queue.schedule(600, DeadlineKind::ring, "call-a");  // moved, not added
  CHECK(queue.size() == 3);
  CHECK(queue.next() == 400);
  CHECK(queue.when(DeadlineKind::ring, "call-a") == 600);
  // The same key under another kind is another deadline.
  queue.schedule(100, DeadlineKind::idle_check, link_key(1));
  CHECK(queue.size() == 4);
  CHECK(queue.when(DeadlineKind::login, link_key(1)) == 500);
  CHECK(queue.next() == 100);
}

TEST_CASE("deadline queue: cancel without the time; cancelling twice or unknown is false") {
  DeadlineQueue queue;
  queue.schedule(100, DeadlineKind::forward, std::string(12, 'x'));
  queue.schedule(200, DeadlineKind::account_check);
  CHECK(queue.cancel(DeadlineKind::forward, std::string(12, 'x')));
  CHECK_FALSE(queue.cancel(DeadlineKind::forward, std::string(12, 'x')));
  CHECK_FALSE(queue.cancel(DeadlineKind::login, link_key(9)));
  CHECK(queue.next() == 200);
  CHECK_FALSE(queue.when(DeadlineKind::forward, std::string(12, 'x')).has_value());
  CHECK(queue.cancel(DeadlineKind::account_check));
  CHECK(queue.empty());
}

TEST_CASE("deadline queue: take_due removes what is due, earliest first, ties by kind then key") {
  DeadlineQueue queue;
  queue.schedule(50, DeadlineKind::login, link_key(258));
  queue.schedule(50, DeadlineKind::login, link_key(3));
  queue.schedule(50, DeadlineKind::ring, "b");
  queue.schedule(20, DeadlineKind::retention_sweep);
  queue.schedule(51, DeadlineKind::ring, "a");
  auto due = queue.take_due(50);
  REQUIRE(due.size() == 4);
  CHECK(due[0].kind == DeadlineKind::retention_sweep);
  CHECK(due[1].kind == DeadlineKind::ring);
  CHECK(due[1].key == "b");
  // Link keys sort like the numbers: 3 before 258.
  CHECK(link_of_key(due[2].key) == 3);
  CHECK(link_of_key(due[3].key) == 258);
  CHECK(queue.size() == 1);
  CHECK(queue.take_due(50).empty());
  // A taken deadline can be scheduled again.
  queue.schedule(70, DeadlineKind::login, link_key(3));
  CHECK(queue.when(DeadlineKind::login, link_key(3)) == 70);
  CHECK(queue.take_due(100).size() == 2);
  CHECK(queue.empty());
}

TEST_CASE("deadline queue: next(wakes) skips the kinds that do not wake the node") {
  DeadlineQueue queue;
  queue.schedule(0, DeadlineKind::retention_sweep);
  queue.schedule(10, DeadlineKind::account_check);
  queue.schedule(900, DeadlineKind::login, link_key(1));
  auto all_but_sweep = [](DeadlineKind kind) { return kind != DeadlineKind::retention_sweep; };
  auto only_links = [](DeadlineKind kind) { return kind == DeadlineKind::login; };
  auto nothing = [](DeadlineKind) { return false; };
  CHECK(queue.next() == 0);
  CHECK(queue.next(all_but_sweep) == 10);
  CHECK(queue.next(only_links) == 900);
  CHECK_FALSE(queue.next(nothing).has_value());
}

TEST_CASE("link keys round-trip and keep the numbers' order") {
  for (uint64_t link : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256}, ~uint64_t{0}})
    CHECK(link_of_key(link_key(link)) == link);
  CHECK(link_key(255) < link_key(256));
  CHECK(link_key(1) < link_key(~uint64_t{0}));
}
