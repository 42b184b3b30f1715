#include "audio/tones.hpp"

#include <doctest/doctest.h>

#include <array>

#include "audio_test_support.hpp"

using namespace tsunagu::audio;
using namespace tsunagu::audio::test;

namespace {

// Which 20 ms frames of a cadence sound, over `frames` frames.
std::vector<bool> pattern(Tone tone, size_t frames, std::vector<int16_t>* audio = nullptr) {
  ToneGenerator generator(tone);
  std::vector<bool> sounding;
  std::array<int16_t, 960> frame{};
  for (size_t i = 0; i < frames; ++i) {
    bool said = generator.next_frame(frame);
    CHECK(said == (rms(frame) > 100));
    sounding.push_back(said);
    if (audio != nullptr) audio->insert(audio->end(), frame.begin(), frame.end());
  }
  return sounding;
}

std::vector<bool> expected(std::initializer_list<std::pair<bool, size_t>> runs, size_t repeats) {
  std::vector<bool> out;
  for (size_t r = 0; r < repeats; ++r)
    for (auto [on, frames] : runs) out.insert(out.end(), frames, on);
  return out;
}

}  // namespace

TEST_CASE("tones: ringing is 425 Hz, 1 s on and 4 s off, repeating") {
  std::vector<int16_t> audio;
  auto sounding = pattern(Tone::ringing, 500, &audio);
  CHECK(sounding == expected({{true, 50}, {false, 200}}, 2));
  std::span<const int16_t> burst(audio.data(), 48000);
  CHECK(strongest(burst, 48000, 300, 600, 1) == doctest::Approx(425).epsilon(0.002));
  // -16 dBFS: a sine of peak 32767 * 10^(-16/20) = 5193, RMS 3672.
  CHECK(rms(burst) == doctest::Approx(3672).epsilon(0.02));
}

TEST_CASE("tones: call waiting is a double beep every 5 s; hold a short beep every 3 s") {
  CHECK(pattern(Tone::call_waiting, 500) == expected({{true, 10}, {false, 10}, {true, 10}, {false, 220}}, 2));
  CHECK(pattern(Tone::hold, 300) == expected({{true, 5}, {false, 145}}, 2));
}

TEST_CASE("tones: no clicks between frames inside a burst, and restart begins the cadence again") {
  ToneGenerator generator(Tone::ringing);
  std::vector<int16_t> audio(960 * 50);
  for (size_t i = 0; i < 50; ++i) generator.next_frame(std::span<int16_t, 960>(audio.data() + i * 960, 960));
  int largest_step = 0;
  for (size_t i = 1; i < audio.size(); ++i) largest_step = std::max(largest_step, std::abs(audio[i] - audio[i - 1]));
  // A 425 Hz sine of peak 5193 moves at most 2 pi 425 / 48000 * 5193 = 289 per sample.
  CHECK(largest_step <= 292);
  std::array<int16_t, 960> frame{};
  for (int i = 0; i < 10; ++i) generator.next_frame(frame);  // into the silence
  CHECK_FALSE(generator.next_frame(frame));
  generator.restart();
  CHECK(generator.next_frame(frame));
}

TEST_CASE("tones: every burst starts and ends at a zero crossing, so its edges do not click") {
  for (Tone tone : {Tone::ringing, Tone::call_waiting, Tone::hold}) {
    CAPTURE(static_cast<int>(tone));
    std::vector<int16_t> audio;
    pattern(tone, 500, &audio);
    int edges = 0;
    for (size_t i = 1; i < audio.size(); ++i) {
      bool starts = audio[i - 1] == 0 && audio[i] != 0 && (i < 2 || audio[i - 2] == 0);
      bool ends = audio[i - 1] != 0 && audio[i] == 0 && i + 1 < audio.size() && audio[i + 1] == 0;
      if (starts || ends) {
        ++edges;
        CHECK(std::abs(audio[starts ? i : i - 1]) <= 292);  // no larger than one step of the sine
      }
    }
    CHECK(edges >= 4);
  }
}
