// The tones a terminal plays locally, as 20 ms frames of 48 kHz mono: the
// ringing tone while the callee is rung, the call-waiting tone over a call in
// progress, and the tone a held party hears. Cadences follow the common
// European 425 Hz plan (ETSI TR 101 041), which most listeners recognise.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tsunagu::audio {

enum class Tone : uint8_t {
  ringing,       // 425 Hz, 1 s on, 4 s off
  call_waiting,  // 425 Hz, 0.2 s on, 0.2 s off, 0.2 s on, 4.4 s off (a double beep every 5 s)
  hold,          // 425 Hz, 0.1 s on, 2.9 s off (a short beep every 3 s: the line is alive)
  units_low,     // 1400 Hz, three 0.15 s beeps 0.1 s apart, then 2.35 s off: a card call's units run out
};

struct Cadence {
  double frequency_hz;
  std::vector<unsigned> on_off_ms;  // on, off, on, off, ... repeating; each a multiple of 20 ms
};

const Cadence& cadence_of(Tone tone);

class ToneGenerator {
 public:
  explicit ToneGenerator(Tone tone, double level_dbfs = -16);
  // The next 20 ms; true when any of it sounds.
  bool next_frame(std::span<int16_t, 960> out);
  void restart();

 private:
  const Cadence& cadence_;
  double amplitude_;
  uint64_t sample_ = 0;  // since the start of the cadence, for phase continuity
  uint64_t period_samples_ = 0;
};

}  // namespace tsunagu::audio
