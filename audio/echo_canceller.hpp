// Acoustic echo cancellation for device mode: speexdsp's MDF canceller (with
// its preprocessor's residual echo suppression) on 20 ms frames of 48 kHz
// mono. The far end (what we play) goes in before the near end (what the
// microphone heard) of the same period. Off for files.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace tsunagu::audio {

class EchoCanceller {
 public:
  static std::unique_ptr<EchoCanceller> create(unsigned tail_ms = 200);
  virtual ~EchoCanceller() = default;
  virtual void played(std::span<const int16_t, 960> far) = 0;
  virtual void captured(std::span<const int16_t, 960> near, std::span<int16_t, 960> out) = 0;
};

}  // namespace tsunagu::audio
