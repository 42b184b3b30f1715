#include "audio/tones.hpp"

#include <cmath>
#include <numbers>

#include "audio/audio_file.hpp"

namespace tsunagu::audio {

const Cadence& cadence_of(Tone tone) {
  static const Cadence ringing{425, {1000, 4000}};
  static const Cadence call_waiting{425, {200, 200, 200, 4400}};
  static const Cadence hold{425, {100, 2900}};
  // Apart from the 425 Hz plan on purpose: it must not be taken for ringing
  // or call waiting. Played once (its first 650 ms) by CallAudio.
  static const Cadence units_low{1400, {150, 100, 150, 100, 150, 2350}};
  switch (tone) {
    case Tone::ringing: return ringing;
    case Tone::call_waiting: return call_waiting;
    case Tone::hold: return hold;
    case Tone::units_low: return units_low;
  }
  return ringing;
}

ToneGenerator::ToneGenerator(Tone tone, double level_dbfs)
    : cadence_(cadence_of(tone)), amplitude_(32767.0 * std::pow(10.0, level_dbfs / 20.0)) {
  for (unsigned ms : cadence_.on_off_ms) period_samples_ += static_cast<uint64_t>(ms) * (rate / 1000);
}

bool ToneGenerator::next_frame(std::span<int16_t, 960> out) {
  bool sounded = false;
  for (auto& sample : out) {
    uint64_t in_period = sample_ % period_samples_;
    // Which segment of the cadence this sample falls in: even ones sound.
    bool on = false;
    uint64_t edge = 0;
    for (size_t i = 0; i < cadence_.on_off_ms.size(); ++i) {
      edge += static_cast<uint64_t>(cadence_.on_off_ms[i]) * (rate / 1000);
      if (in_period < edge) {
        on = i % 2 == 0;
        break;
      }
    }
    double value = 0;
    if (on) {
      double t = static_cast<double>(sample_) / rate;
      value = amplitude_ * std::sin(2 * std::numbers::pi * cadence_.frequency_hz * t);
      sounded = true;
    }
    sample = static_cast<int16_t>(std::lround(value));
    ++sample_;
  }
  return sounded;
}

void ToneGenerator::restart() { sample_ = 0; }

}  // namespace tsunagu::audio
