#include "terminal/replay_window.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>

using namespace tsunagu::terminal;

TEST_CASE("replay window: an empty window accepts any sequence number") {
  ReplayWindow w;
  CHECK_FALSE(w.any_accepted());
  CHECK(w.check(0));
  CHECK(w.check(12345));
  CHECK(w.check(UINT64_MAX));
}

TEST_CASE("replay window: a sequence number is accepted once") {
  ReplayWindow w;
  w.accept(0);
  CHECK(w.classify(0) == ReplayCheck::replayed);
  CHECK(w.check(1));
  w.accept(1);
  CHECK(w.classify(1) == ReplayCheck::replayed);
  CHECK(w.classify(0) == ReplayCheck::replayed);
  CHECK(w.highest() == 1);
}

TEST_CASE("replay window: reordered packets inside the window are accepted once each") {
  ReplayWindow w;
  for (uint64_t seq : {10u, 3u, 7u, 0u, 9u, 1u, 2u, 8u, 4u, 6u, 5u}) {
    CHECK(w.check(seq));
    w.accept(seq);
    CHECK(w.classify(seq) == ReplayCheck::replayed);
  }
  for (uint64_t seq = 0; seq <= 10; ++seq) CHECK(w.classify(seq) == ReplayCheck::replayed);
  CHECK(w.highest() == 10);
}

TEST_CASE("replay window: exactly 1024 sequence numbers are remembered") {
  ReplayWindow w;
  w.accept(5000);
  const uint64_t lowest = 5000 - ReplayWindow::window_size + 1;  // 3977
  CHECK(w.classify(lowest) == ReplayCheck::fresh);
  CHECK(w.classify(lowest - 1) == ReplayCheck::too_old);
  CHECK(w.classify(0) == ReplayCheck::too_old);
  // Every sequence in the window can be accepted, and then all are replays.
  for (uint64_t seq = lowest; seq < 5000; ++seq) w.accept(seq);
  for (uint64_t seq = lowest; seq <= 5000; ++seq) CHECK(w.classify(seq) == ReplayCheck::replayed);
}

TEST_CASE("replay window: moving forward forgets the bits of sequences that left the window") {
  ReplayWindow w;
  for (uint64_t seq = 0; seq < 1024; ++seq) w.accept(seq);
  // One step forward: 0 leaves, 1..1023 stay replays, 1024 is new.
  w.accept(1024);
  CHECK(w.classify(0) == ReplayCheck::too_old);
  CHECK(w.classify(1) == ReplayCheck::replayed);
  // A jump of a whole window and a bit: everything in the new window is fresh,
  // including the sequences whose bits share storage with old ones.
  w.accept(1024 + 1100);
  for (uint64_t seq = 1024 + 1100 - 1023; seq < 1024 + 1100; ++seq) CHECK(w.classify(seq) == ReplayCheck::fresh);
  // Blocks of 64 share ring slots 17 blocks apart: a slot reused after the
  // window moved on must not keep the bits of its earlier block.
  ReplayWindow v;
  v.accept(64);   // block 1: ring slot 1, bit 0
  v.accept(100);  // block 1: ring slot 1, bit 36
  v.accept(64 * 17 + 36);  // 1124, block 17 (slot 0): the window is now 101..1124
  CHECK(v.classify(64) == ReplayCheck::too_old);
  CHECK(v.classify(100) == ReplayCheck::too_old);
  CHECK(v.classify(101) == ReplayCheck::fresh);
  v.accept(64 * 18 + 36);  // 1188, block 18: slot 1 again, now for 1152..1215
  CHECK(v.classify(64 * 18) == ReplayCheck::fresh);  // 1152 has the old bit of 64
  CHECK(v.classify(64 * 18 + 36) == ReplayCheck::replayed);
  CHECK(v.classify(64 * 18 + 35) == ReplayCheck::fresh);
}

TEST_CASE("replay window: refused sequence numbers are not recorded") {
  ReplayWindow w;
  w.accept(3000);
  w.accept(10);  // too old: ignored
  CHECK(w.highest() == 3000);
  CHECK(w.classify(10) == ReplayCheck::too_old);
  w.accept(3000);  // replay: ignored
  CHECK(w.highest() == 3000);
}

TEST_CASE("replay window: works at the top of the sequence space") {
  ReplayWindow w;
  w.accept(UINT64_MAX - 1);
  CHECK(w.check(UINT64_MAX));
  w.accept(UINT64_MAX);
  CHECK(w.classify(UINT64_MAX) == ReplayCheck::replayed);
  CHECK(w.classify(UINT64_MAX - 1) == ReplayCheck::replayed);
  CHECK(w.classify(UINT64_MAX - 2) == ReplayCheck::fresh);
  CHECK(w.classify(UINT64_MAX - 1024) == ReplayCheck::too_old);
}

TEST_CASE("replay window: agrees with a set-based model on random traffic") {
  std::mt19937_64 random(20240611);
  ReplayWindow w;
  std::set<uint64_t> accepted;
  uint64_t highest = 0;
  bool any = false;
  uint64_t base = 0;
  for (int i = 0; i < 200000; ++i) {
    // Mostly near the front, sometimes far behind, sometimes a big jump ahead.
    uint64_t pick = random() % 100;
    uint64_t seq;
    if (pick < 2) {
      base += 500 + random() % 3000;
      seq = base;
    } else if (pick < 10) {
      seq = base > 2000 ? base - 900 - random() % 400 : random() % 2000;
    } else {
      seq = base + random() % 80;
      if (seq >= 40) seq -= 40;
    }
    base = std::max(base, seq);

    ReplayCheck expected = ReplayCheck::fresh;
    if (any && seq <= highest) {
      if (highest - seq >= 1024) {
        expected = ReplayCheck::too_old;
      } else if (accepted.count(seq) != 0) {
        expected = ReplayCheck::replayed;
      }
    }
    REQUIRE(w.classify(seq) == expected);
    if (random() % 4 != 0) {  // some packets fail authentication and are never accepted
      w.accept(seq);
      if (expected == ReplayCheck::fresh) {
        accepted.insert(seq);
        if (!any || seq > highest) highest = seq;
        any = true;
      }
      REQUIRE(w.highest() == highest);
    }
    // Keep the model small.
    if (any && highest > 4096) accepted.erase(accepted.begin(), accepted.lower_bound(highest - 4096));
  }
}
