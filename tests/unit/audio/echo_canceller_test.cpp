#include "audio/echo_canceller.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>

#include "audio/audio_file.hpp"

#include <cstdlib>
#include <ctime>
#include <string>
#include "audio_test_support.hpp"

using namespace tsunagu::audio;
using namespace tsunagu::audio::test;

namespace {

// Speech-like: low-passed noise under a syllable envelope (about 4 per
// second, with pauses), deterministic. `seed` makes a different talker.
class Talker {
 public:
  explicit Talker(uint32_t seed, double syllable_hz) : state_(seed), syllable_hz_(syllable_hz) {}
  int16_t next() {
    state_ = state_ * 1664525u + 1013904223u;
    double white = (static_cast<double>(state_ >> 8) / (1u << 24)) * 2 - 1;
    low_ = 0.7 * low_ + 0.3 * white;       // towards a speech-like spectrum
    band_ = low_ - 0.5 * previous_;          // but not all bass
    previous_ = low_;
    double t = static_cast<double>(n_++) / rate;
    double syllable = std::max(0.0, std::sin(2 * std::numbers::pi * syllable_hz_ * t));
    double phrase = std::sin(2 * std::numbers::pi * 0.25 * t) > -0.3 ? 1.0 : 0.0;  // pauses between phrases
    return static_cast<int16_t>(std::clamp(30000 * band_ * syllable * syllable * phrase, -32000.0, 32000.0));
  }

 private:
  uint32_t state_;
  double syllable_hz_, low_ = 0, band_ = 0, previous_ = 0;
  uint64_t n_ = 0;
};

// Loudspeaker to microphone: 40 ms of delay, a few reflections, and the room's
// noise 30 dB under the echo.
class EchoPath {
 public:
  EchoPath() : line_(1920 + 64, 0) {}
  double next(int16_t far) {
    line_.push_front(far);
    line_.pop_back();
    constexpr std::array<std::pair<size_t, double>, 5> taps{
        {{1920, 0.5}, {1921, 0.2}, {1935, -0.12}, {1960, 0.08}, {1983, -0.04}}};
    double echo = 0;
    for (auto [delay, gain] : taps) echo += gain * line_[delay];
    return echo;
  }

 private:
  std::deque<int16_t> line_;
};

struct Result {
  double erle_db;
  double near_speech_kept_db;  // double talk: output power over the near talker's power
  double near_speech_correlation;  // double talk: of the output with the near talker alone
  size_t latency_samples;          // of the output behind the input
  double cpu_ms_per_second;        // the canceller's own CPU time per second of audio
};

std::vector<int16_t> talk(uint32_t seed, double syllable_hz, double seconds) {
  Talker talker(seed, syllable_hz);
  std::vector<int16_t> out(static_cast<size_t>(seconds * rate));
  for (auto& s : out) s = talker.next();
  return out;
}

// `far_signal` (48 kHz, whole frames) played and heard back through the echo
// path; with double talk a near talker speaks from 5 s on.
Result run(const std::vector<int16_t>& far_signal, bool double_talk) {
  auto canceller = EchoCanceller::create(200);
  Talker near_talker(999, 2.9);
  EchoPath path;
  uint32_t noise_state = 42;
  // The echo's level, for the noise 30 dB under it: measured in a first pass.
  double echo_rms = 0;
  {
    EchoPath probe_path;
    double sum = 0;
    for (int16_t x : far_signal) {
      double e = probe_path.next(x);
      sum += e * e;
    }
    echo_rms = std::sqrt(sum / static_cast<double>(far_signal.size()));
  }
  double noise_amplitude = echo_rms * std::pow(10.0, -30.0 / 20) * std::sqrt(3.0);  // uniform noise of that RMS

  double near_energy = 0, out_energy = 0, talker_energy = 0;
  std::vector<double> talker_all, out_all;
  std::clock_t cpu_clock = 0;
  size_t frames = far_signal.size() / 960;
  std::array<int16_t, 960> far{}, near{}, out{};
  for (size_t frame = 0; frame < frames; ++frame) {
    bool measured = frame >= 100;  // the first 2 s are the canceller's to converge
    for (size_t i = 0; i < 960; ++i) {
      far[i] = far_signal[frame * 960 + i];
      noise_state = noise_state * 1103515245u + 12345u;
      double noise = noise_amplitude * ((static_cast<double>(noise_state >> 8) / (1u << 24)) * 2 - 1);
      double talker = double_talk && frame >= 250 ? near_talker.next() * 0.5 : 0.0;
      near[i] = static_cast<int16_t>(std::clamp(path.next(far[i]) + noise + talker, -32768.0, 32767.0));
      talker_all.push_back(talker);
      if (measured) talker_energy += talker * talker;
    }
    std::clock_t started = std::clock();
    canceller->played(far);
    canceller->captured(near, out);
    cpu_clock += std::clock() - started;
    out_all.insert(out_all.end(), out.begin(), out.end());
    if (measured) {
      for (size_t i = 0; i < 960; ++i) {
        near_energy += static_cast<double>(near[i]) * near[i];
        out_energy += static_cast<double>(out[i]) * out[i];
      }
    }
  }
  Result result{};
  result.cpu_ms_per_second = static_cast<double>(cpu_clock) * 1000 / CLOCKS_PER_SEC / (static_cast<double>(frames) / 50);
  result.erle_db = 10 * std::log10(near_energy / (out_energy + 1));
  result.near_speech_kept_db = talker_energy > 0 ? 10 * std::log10(out_energy / talker_energy) : 0;
  // The output lags the input by the preprocessor's frame: find it.
  for (size_t lag = 0; lag <= 1000 && talker_energy > 0; ++lag) {
    double c = 0, tt = 0, oo = 0;
    for (size_t i = 300 * 960; i + lag < out_all.size(); i += 3) {
      c += talker_all[i] * out_all[i + lag];
      tt += talker_all[i] * talker_all[i];
      oo += out_all[i + lag] * out_all[i + lag];
    }
    double correlation = c / std::sqrt(tt * oo + 1);
    if (correlation > result.near_speech_correlation) {
      result.near_speech_correlation = correlation;
      result.latency_samples = lag;
    }
  }
  return result;
}

}  // namespace

TEST_CASE("echo canceller: an echo through a 40 ms path is reduced by at least 15 dB once converged") {
  Result result = run(talk(12345, 3.7, 12), false);
  MESSAGE("ERLE after the first 2 s (40 ms delay, 5-tap path, noise at -30 dB): " << result.erle_db << " dB; "
          << result.cpu_ms_per_second << " ms CPU per second of audio");
  CHECK(result.erle_db >= 15);
}

TEST_CASE("echo canceller: during double talk the near talker still comes through") {
  // From 5 s on a near talker speaks over the echo: the output must carry
  // them (not be suppressed to silence along with the echo).
  Result result = run(talk(12345, 3.7, 12), true);
  MESSAGE("double talk: output power relative to the near talker alone: " << result.near_speech_kept_db
          << " dB, correlation with them " << result.near_speech_correlation << " at a delay of "
          << result.latency_samples / 48.0 << " ms");
  CHECK(result.near_speech_kept_db > -6);
  CHECK(result.near_speech_kept_db < 3);
  // Mostly the near talker, little echo: echo left in would lower this.
  CHECK(result.near_speech_correlation > 0.9);
  CHECK(result.latency_samples <= 480);  // 10 ms: the preprocessor's frame, no more
}

TEST_CASE("echo canceller: silence in, silence out; near speech without any far signal passes") {
  auto canceller = EchoCanceller::create();
  std::array<int16_t, 960> silence{}, out{};
  canceller->played(silence);
  canceller->captured(silence, out);
  CHECK(rms(out) < 1);
  Talker talker(5, 3.1);
  double in_energy = 0, out_energy = 0;
  std::array<int16_t, 960> near{};
  for (int frame = 0; frame < 150; ++frame) {
    for (auto& s : near) s = talker.next();
    canceller->played(silence);
    canceller->captured(near, out);
    if (frame >= 50) {
      in_energy += rms(near) * rms(near);
      out_energy += rms(out) * rms(out);
    }
  }
  double kept_db = 10 * std::log10(out_energy / in_energy);
  MESSAGE("near speech alone: output " << kept_db << " dB relative to input");
  CHECK(kept_db > -3);
}

TEST_CASE("echo canceller: real speech (espeak-ng, read through the file reader) loses its echo too") {
  TemporaryDirectory dir;
  std::string wav = dir / "speech.wav";
  std::string command = "espeak-ng -s 150 -w '" + wav +
                        "' 'The quick brown fox jumps over the lazy dog. Please leave a message after the tone, "
                        "and we will call you back as soon as we can.' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    MESSAGE("SKIPPED this case: espeak-ng is not installed (apt-get install espeak-ng)");
    return;
  }
  auto reader = AudioFileReader::open(wav);
  REQUIRE_MESSAGE(reader, (reader ? "" : reader.error()));
  std::vector<int16_t> speech;
  std::array<int16_t, frame_samples> frame{};
  for (int i = 0; i < 3000 && (*reader)->read_frame(frame) > 0; ++i) speech.insert(speech.end(), frame.begin(), frame.end());
  REQUIRE(speech.size() > static_cast<size_t>(3 * rate));
  // Twelve seconds of it, louder (espeak-ng speaks softly), end to end.
  std::vector<int16_t> far;
  while (far.size() < static_cast<size_t>(12 * rate))
    for (int16_t s : speech) far.push_back(static_cast<int16_t>(std::clamp(s * 2, -32768, 32767)));
  far.resize(12 * rate);
  Result result = run(far, false);
  MESSAGE("ERLE on espeak-ng speech (" << (*reader)->source_rate() << " Hz source): " << result.erle_db << " dB");
  CHECK(result.erle_db >= 15);
}
