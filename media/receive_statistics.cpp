#include "media/receive_statistics.hpp"

#include <cmath>

namespace tsunagu::media {

namespace {

constexpr uint16_t max_dropout = 3000;
constexpr uint16_t max_misorder = 100;

}  // namespace

void ReceiveStatistics::restart(uint16_t sequence) {
  started_ = true;
  max_ = sequence;
  cycles_ = 0;
  base_ = sequence;
  bad_ = 0x10000 + 1;
  received_ = expected_prior_ = received_prior_ = 0;
  seen_.reset();
}

ReceiveStatistics::Verdict ReceiveStatistics::on_packet(uint16_t sequence) {
  if (!started_) {
    restart(sequence);
  } else {
    uint16_t delta = static_cast<uint16_t>(sequence - max_);
    if (delta == 0) return Verdict::duplicate;
    if (delta < max_dropout) {
      // In order, maybe with a gap: forget the window slots we skip over.
      for (uint32_t k = 1; k <= delta && k <= window; ++k) seen_.reset((extended_max() + k) % window);
      if (sequence < max_) cycles_ += 0x10000;
      max_ = sequence;
    } else if (delta <= 0x10000 - max_misorder) {
      // A large jump: a restarted sender if the next packet follows it, else noise.
      if (sequence != bad_) {
        bad_ = (static_cast<uint32_t>(sequence) + 1) & 0xffff;
        return Verdict::jumped;
      }
      restart(sequence);
    } else {
      // Reordered, up to max_misorder behind.
      uint32_t back = 0x10000u - delta;
      if (back >= window) return Verdict::duplicate;
      uint32_t extended = extended_max() - back;
      if (seen_.test(extended % window)) return Verdict::duplicate;
      seen_.set(extended % window);
      ++received_;
      return Verdict::accepted;
    }
  }
  seen_.set(extended_max() % window);
  ++received_;
  return Verdict::accepted;
}

void ReceiveStatistics::on_transit(uint32_t rtp_timestamp, uint32_t arrival) {
  int32_t transit = static_cast<int32_t>(arrival - rtp_timestamp);
  if (have_transit_) {
    double d = std::abs(static_cast<double>(transit) - static_cast<double>(transit_));
    jitter_ += (d - jitter_) / 16.0;
  }
  transit_ = transit;
  have_transit_ = true;
}

uint8_t ReceiveStatistics::take_fraction_lost() {
  uint64_t expected_now = expected();
  uint64_t expected_interval = expected_now - expected_prior_;
  uint64_t received_interval = received_ - received_prior_;
  expected_prior_ = expected_now;
  received_prior_ = received_;
  if (expected_interval == 0 || received_interval >= expected_interval) return 0;
  return static_cast<uint8_t>(((expected_interval - received_interval) << 8) / expected_interval);
}

}  // namespace tsunagu::media
