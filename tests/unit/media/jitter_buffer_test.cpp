#include "media/jitter_buffer.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace tsunagu;
using namespace tsunagu::media;

namespace {

using Status = FrameJitterBuffer::Status;

Bytes payload_for(uint32_t k) { return Bytes{std::byte(k & 0xff), std::byte{0x42}}; }

}  // namespace

TEST_CASE("jitter buffer: nothing before the first packet, then frames in order") {
  auto jb = FrameJitterBuffer::create(300);
  REQUIRE(jb);
  CHECK(jb->get().status == Status::not_started);
  CHECK(jb->delay_ms() == 0);
  const uint32_t base = 4'000'000'000u;  // wraps past 2^32 during the test
  std::vector<uint32_t> played;
  for (uint32_t k = 0; k < 400; ++k) {
    CHECK(jb->put(base + k * 960, static_cast<uint16_t>(k), payload_for(k), 7) == FrameJitterBuffer::PutResult::stored);
    auto f = jb->get();
    if (f.status == Status::frame) {
      CHECK(f.tag == 7);
      CHECK(f.payload == payload_for((f.timestamp - base) / 960));
      played.push_back((f.timestamp - base) / 960);
    }
  }
  REQUIRE(played.size() > 350);
  for (size_t i = 1; i < played.size(); ++i) CHECK(played[i] == played[i - 1] + 1);
}

TEST_CASE("jitter buffer: a missing frame comes with the next frame's payload when that is here") {
  auto jb = FrameJitterBuffer::create(300);
  REQUIRE(jb);
  // Two frames of head start, so the next packet is always here a frame early.
  uint32_t next_put = 0;
  auto put_one = [&] {
    if (next_put != 50) jb->put(next_put * 960, static_cast<uint16_t>(next_put), payload_for(next_put), 0);
    ++next_put;
  };
  put_one();
  put_one();
  bool saw_missing = false;
  for (int i = 0; i < 100; ++i) {
    put_one();
    auto f = jb->get();
    if (f.status == Status::missing || f.status == Status::insertion) {
      if (f.timestamp == 50 * 960) {
        saw_missing = true;
        CHECK(f.status == Status::missing);
        REQUIRE(f.next_payload);
        CHECK(*f.next_payload == payload_for(51));
      }
    }
  }
  CHECK(saw_missing);
}

TEST_CASE("jitter buffer: a packet after its frame was played is late; the same timestamp twice a duplicate") {
  auto jb = FrameJitterBuffer::create(300);
  REQUIRE(jb);
  for (uint32_t k = 0; k < 20; ++k) {
    if (k != 10) jb->put(k * 960, static_cast<uint16_t>(k), payload_for(k), 0);
    jb->get();
  }
  CHECK(jb->put(10 * 960, 10, payload_for(10), 0) == FrameJitterBuffer::PutResult::late);
  CHECK(jb->put(25 * 960, 25, payload_for(25), 0) == FrameJitterBuffer::PutResult::stored);
  CHECK(jb->put(25 * 960, 41, payload_for(25), 0) == FrameJitterBuffer::PutResult::duplicate);
  CHECK_FALSE(jb->fits(26 * 960 + 480));
  CHECK(jb->put(26 * 960 + 480, 42, payload_for(26), 0) == FrameJitterBuffer::PutResult::off_grid);
  CHECK(jb->fits(26 * 960));
  // Far behind: late, and not even shown to speexdsp (its timings are 16-bit).
  CHECK(jb->put(0, 0, payload_for(0), 0) == FrameJitterBuffer::PutResult::late);
}

TEST_CASE("jitter buffer: jittery arrival grows the delay, and it is reported in ms") {
  auto jb = FrameJitterBuffer::create(300);
  REQUIRE(jb);
  // Packets arrive in bursts of four every 80 ms: the buffer must hold about 60 ms to play them smoothly.
  uint32_t missing_late = 0;
  for (uint32_t tick = 0; tick < 500; ++tick) {
    if (tick % 4 == 3) {
      for (uint32_t k = tick - 3; k <= tick; ++k) jb->put(k * 960, static_cast<uint16_t>(k), payload_for(k), 0);
    }
    auto f = jb->get();
    if (tick > 300 && f.status != Status::frame) ++missing_late;
  }
  MESSAGE("delay after bursts: " << jb->delay_ms() << " ms; non-frames in the last 200 ticks: " << missing_late);
  CHECK(jb->delay_ms() >= 20);
  CHECK(jb->delay_ms() <= 300);
  CHECK(missing_late < 20);
}

TEST_CASE("jitter buffer: never deeper than its maximum") {
  auto jb = FrameJitterBuffer::create(100);
  REQUIRE(jb);
  jb->put(0, 0, payload_for(0), 0);
  jb->get();
  // Up to 120 ms ahead still fits (the maximum plus the frame being played); that is deeper than 100 ms.
  for (uint32_t k = 1; k < 10; ++k) {
    bool fits = jb->fits(k * 960);
    CHECK(fits == (k <= 6));
    if (fits) CHECK(jb->put(k * 960, static_cast<uint16_t>(k), payload_for(k), 0) == FrameJitterBuffer::PutResult::stored);
  }
  CHECK(jb->delay_ms() > 100);
  uint32_t skipped = 0;
  for (int i = 0; i < 20; ++i) skipped += jb->get().skipped;
  CHECK(skipped > 0);
  CHECK(jb->delay_ms() <= 100);
  CHECK_FALSE(FrameJitterBuffer::create(5));
}

TEST_CASE("jitter buffer: one far-future packet is refused; five in a row start the buffer over on the new timeline") {
  auto jb = FrameJitterBuffer::create(300);
  REQUIRE(jb);
  for (uint32_t k = 0; k < 20; ++k) {
    jb->put(k * 960, static_cast<uint16_t>(k), payload_for(k), 0);
    jb->get();
  }
  const uint32_t far = 1'000'000 * 960;
  CHECK_FALSE(jb->fits(far));
  CHECK_FALSE(jb->admit(far));
  CHECK(jb->put(far, 100, payload_for(1), 0) == FrameJitterBuffer::PutResult::early);
  CHECK(jb->delay_ms() <= 300);
  // The stream goes on undisturbed.
  for (uint32_t k = 20; k < 40; ++k) {
    CHECK(jb->admit(k * 960));
    CHECK(jb->put(k * 960, static_cast<uint16_t>(k), payload_for(k), 0) == FrameJitterBuffer::PutResult::stored);
    auto f = jb->get();
    CHECK(f.skipped == 0);
  }
  // The sender's timeline jumps for good (and off the old grid).
  const uint32_t jumped = 777'777'777;
  for (uint32_t k = 0; k < 4; ++k) CHECK_FALSE(jb->admit(jumped + k * 960));
  REQUIRE(jb->admit(jumped + 4 * 960));
  CHECK(jb->put(jumped + 4 * 960, 104, payload_for(4), 0) == FrameJitterBuffer::PutResult::stored);
  bool played_new = false;
  for (uint32_t k = 5; k < 30; ++k) {
    CHECK(jb->admit(jumped + k * 960));
    jb->put(jumped + k * 960, static_cast<uint16_t>(100 + k), payload_for(k), 0);
    auto f = jb->get();
    if (f.status == Status::frame && f.timestamp - jumped < 30 * 960) played_new = true;
  }
  CHECK(played_new);
}
