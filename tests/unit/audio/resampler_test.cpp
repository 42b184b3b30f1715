#include "audio/resampler.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <ctime>

#include "audio_test_support.hpp"

using namespace tsunagu::audio;
using namespace tsunagu::audio::test;

TEST_CASE("resampler: 8 kHz to 48 kHz keeps a tone's frequency and the stream's length") {
  auto resampler = Resampler::create(8000, 48000);
  REQUIRE(resampler);
  auto input = sine(697, 8000, 8000);
  std::vector<int16_t> output;
  (*resampler)->process(input, output);
  (*resampler)->flush(output);
  CHECK(output.size() == 48000);
  std::span<const int16_t> settled(output.data() + 4800, 38400);
  CHECK(strongest(settled, 48000, 600, 800, 1) == doctest::Approx(697).epsilon(0.003));
  // The level survives too (a sine of amplitude 10000 has an RMS of 7071).
  CHECK(rms(settled) == doctest::Approx(7071).epsilon(0.05));
}

TEST_CASE("resampler: the filter's delay is removed, so output lines up with input") {
  auto up = Resampler::create(16000, 48000);
  REQUIRE(up);
  std::vector<int16_t> impulse(1600, 0);
  impulse[800] = 20000;
  std::vector<int16_t> output;
  (*up)->process(impulse, output);
  (*up)->flush(output);
  REQUIRE(output.size() == 4800);
  size_t peak = 0;
  for (size_t i = 0; i < output.size(); ++i)
    if (std::abs(output[i]) > std::abs(output[peak])) peak = i;
  CHECK(peak >= 2398);
  CHECK(peak <= 2402);
}

TEST_CASE("resampler: feeding in odd pieces gives what feeding it whole gives") {
  auto input = sine(440, 44100, 44100);
  auto whole = Resampler::create(44100, 48000);
  auto pieces = Resampler::create(44100, 48000);
  REQUIRE(whole);
  REQUIRE(pieces);
  std::vector<int16_t> a, b;
  (*whole)->process(input, a);
  (*whole)->flush(a);
  size_t offset = 0, step = 1;
  while (offset < input.size()) {
    size_t n = std::min(step, input.size() - offset);
    (*pieces)->process(std::span<const int16_t>(input.data() + offset, n), b);
    offset += n;
    step = step * 7 % 1031 + 1;  // sizes from 1 to about 1000 samples
  }
  (*pieces)->flush(b);
  CHECK(a.size() == 48000);
  REQUIRE(b.size() == a.size());
  int max_difference = 0;
  for (size_t i = 0; i < a.size(); ++i) max_difference = std::max(max_difference, std::abs(a[i] - b[i]));
  CHECK(max_difference <= 1);
}

TEST_CASE("resampler: 48 kHz down to 16 kHz and equal rates pass through") {
  auto down = Resampler::create(48000, 16000);
  REQUIRE(down);
  auto input = sine(1000, 48000, 48000);
  std::vector<int16_t> output;
  (*down)->process(input, output);
  (*down)->flush(output);
  CHECK(output.size() == 16000);
  CHECK(strongest(std::span<const int16_t>(output.data() + 1600, 12800), 16000, 900, 1100, 1) ==
        doctest::Approx(1000).epsilon(0.003));

  auto same = Resampler::create(48000, 48000);
  REQUIRE(same);
  std::vector<int16_t> copy;
  (*same)->process(input, copy);
  (*same)->flush(copy);
  CHECK(copy == input);
}

TEST_CASE("resampler: rates outside 1 kHz..384 kHz are refused with the reason") {
  auto zero = Resampler::create(0, 48000);
  REQUIRE_FALSE(zero);
  CHECK(zero.error().find("out of range") != std::string::npos);
  CHECK_FALSE(Resampler::create(48000, 10'000'000));
}

TEST_CASE("downmix: the channels' average, a partial trailing frame ignored") {
  std::vector<int16_t> stereo{100, 300, -32768, -32768, 32767, 32767, 5};
  std::vector<int16_t> mono;
  downmix(stereo, 2, mono);
  CHECK(mono == std::vector<int16_t>{200, -32768, 32767});
  std::vector<int16_t> three{3, 6, 9, -3, -6, -9};
  mono.clear();
  downmix(three, 3, mono);
  CHECK(mono == std::vector<int16_t>{6, -6});
}

TEST_CASE("resampler: CPU cost of 60 s of 44.1 kHz to 48 kHz (reported)") {
  auto resampler = Resampler::create(44100, 48000);
  REQUIRE(resampler);
  auto input = sine(440, 44100, 441);  // 10 ms pieces, as a device delivers them
  std::vector<int16_t> output;
  std::clock_t start = std::clock();
  for (int i = 0; i < 6000; ++i) {
    output.clear();
    (*resampler)->process(input, output);
  }
  double cpu_seconds = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  MESSAGE("resampler 44.1 -> 48 kHz, quality 5: " << cpu_seconds * 1000 / 60 << " ms CPU per second of audio");
  CHECK(cpu_seconds < 6);  // a tenth of real time, even on a loaded machine
}
