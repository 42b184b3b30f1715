// What a receiver knows about one RTP source (RFC 3550 A.1, A.3, A.8):
// extended sequence numbers, duplicates, loss and interarrival jitter.
#pragma once

#include <bitset>
#include <cstdint>

namespace tsunagu::media {

class ReceiveStatistics {
 public:
  enum class Verdict {
    accepted,
    duplicate,  // this sequence number was already received
    jumped,     // far from the sequence so far: dropped until a second one confirms a restart (A.1)
  };
  Verdict on_packet(uint16_t sequence);
  // A.8: `arrival` in RTP timestamp units on the receiver's clock.
  void on_transit(uint32_t rtp_timestamp, uint32_t arrival);

  bool started() const { return started_; }
  uint64_t received() const { return received_; }
  uint64_t expected() const { return started_ ? extended_max() - base_ + 1 : 0; }
  uint64_t lost() const { return expected() > received_ ? expected() - received_ : 0; }
  uint32_t extended_max() const { return cycles_ + max_; }
  double jitter() const { return jitter_; }  // timestamp units
  // A.3: the fraction lost since the previous call, in 1/256; and the cumulative loss (may be negative with duplicates
  // from a restart, never here since we drop them).
  uint8_t take_fraction_lost();
  int64_t cumulative_lost() const { return static_cast<int64_t>(expected()) - static_cast<int64_t>(received_); }

 private:
  void restart(uint16_t sequence);
  static constexpr size_t window = 1024;  // duplicates are recognised this far back

  bool started_ = false;
  uint16_t max_ = 0;
  uint32_t cycles_ = 0;  // count of wraps, shifted left by 16
  uint32_t base_ = 0;
  uint32_t bad_ = 0x10000 + 1;  // the sequence number that would confirm a jump
  uint64_t received_ = 0;
  uint64_t expected_prior_ = 0, received_prior_ = 0;
  bool have_transit_ = false;
  int32_t transit_ = 0;
  double jitter_ = 0;
  std::bitset<window> seen_;  // by extended sequence number modulo window
};

}  // namespace tsunagu::media
