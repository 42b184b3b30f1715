// Sample-rate conversion of mono 16-bit audio (speexdsp's resampler), fed in
// pieces of any size: what a file reader or a device thread gets from below is
// rarely a whole number of 20 ms frames at the other rate. Plus the downmix of
// interleaved channels to mono that every source at another layout needs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/expected.hpp"

struct SpeexResamplerState_;

namespace tsunagu::audio {

class Resampler {
 public:
  // Rates from 1 kHz to 384 kHz; quality 0..10 (speexdsp's scale: 3 is its
  // VoIP setting, 5 its desktop one).
  static Expected<std::unique_ptr<Resampler>, std::string> create(int in_rate, int out_rate, int quality = 5);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  // Appends the output the input yields so far; the filter's own delay is
  // removed (the first output sample lines up with the first input sample).
  void process(std::span<const int16_t> in, std::vector<int16_t>& out);
  // At the end of a stream: pushes silence through so the last input samples
  // come out, and trims to the length the whole input maps to.
  void flush(std::vector<int16_t>& out);

  int in_rate() const { return in_rate_; }
  int out_rate() const { return out_rate_; }

 private:
  Resampler(SpeexResamplerState_* state, int in_rate, int out_rate);
  SpeexResamplerState_* state_;  // null when the rates are equal: a copy
  int in_rate_, out_rate_;
  uint64_t consumed_ = 0, produced_ = 0;
};

// Interleaved frames of `channels` samples to their average; a trailing
// partial frame is ignored.
void downmix(std::span<const int16_t> interleaved, int channels, std::vector<int16_t>& mono);

}  // namespace tsunagu::audio
