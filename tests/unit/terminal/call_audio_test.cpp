// The card's warning tone in what a voice caller hears (terminal/call_audio.*):
// the recording of the caller's playout, read back and measured.
#include "terminal/call_audio.hpp"

#include <doctest/doctest.h>

#include <vector>

#include "tests/unit/audio/audio_test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

namespace {

// What the caller heard: `frames` of a quiet 300 Hz voice, the warning started
// before frame `warn_at` (never when negative); read back from the recording.
std::vector<int16_t> heard(const audio::test::TemporaryDirectory& dir, int frames, int warn_at) {
  AudioOptions options;
  options.output_file = dir / "heard.wav";
  auto opened = CallAudio::open(options);
  REQUIRE(opened.has_value());
  CallAudio& call_audio = **opened;
  auto voice = audio::test::sine(300, 48000, static_cast<size_t>(frames) * 960, 3000);
  for (int i = 0; i < frames; ++i) {
    if (i == warn_at) call_audio.start_warning_tone();
    call_audio.play(std::span<const int16_t, 960>(voice.data() + static_cast<size_t>(i) * 960, 960));
  }
  REQUIRE(call_audio.finish().has_value());
  auto reader = audio::AudioFileReader::open(options.output_file);
  REQUIRE(reader.has_value());
  std::vector<int16_t> out;
  std::array<int16_t, 960> frame{};
  while ((*reader)->read_frame(frame) > 0) out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

double tone_power(const std::vector<int16_t>& pcm, size_t from_ms, size_t to_ms) {
  std::span<const int16_t> part(pcm.data() + from_ms * 48, (to_ms - from_ms) * 48);
  return audio::test::goertzel(part, 1400, 48000);
}

}  // namespace

TEST_CASE("card warning tone: three 1400 Hz beeps over the other party's voice, then the voice alone") {
  audio::test::TemporaryDirectory dir;
  auto pcm = heard(dir, 100, 25);  // 2 s; the warning at 500 ms
  REQUIRE(pcm.size() == 100 * 960);
  double before = tone_power(pcm, 0, 500);
  double first_beep = tone_power(pcm, 520, 630);
  double gap = tone_power(pcm, 660, 740);
  double third_beep = tone_power(pcm, 1010, 1140);
  double after = tone_power(pcm, 1200, 2000);
  CHECK(first_beep > 1000 * before);
  CHECK(third_beep > 1000 * before);
  CHECK(first_beep > 100 * gap);
  CHECK(first_beep > 1000 * after);
  // The voice is still there under the beeps and after them.
  double voice_before = audio::test::goertzel(std::span<const int16_t>(pcm.data(), 500 * 48), 300, 48000);
  double voice_under = audio::test::goertzel(std::span<const int16_t>(pcm.data() + 520 * 48, 110 * 48), 300, 48000);
  CHECK(voice_under > voice_before / 2);
  CHECK(audio::test::strongest(std::span<const int16_t>(pcm.data() + 1200 * 48, 800 * 48), 48000, 200, 2000, 50) == 300);
}

TEST_CASE("card warning tone: none is heard when no warning came") {
  audio::test::TemporaryDirectory dir;
  auto pcm = heard(dir, 50, -1);
  double voice = audio::test::goertzel(std::span<const int16_t>(pcm.data(), pcm.size()), 300, 48000);
  CHECK(tone_power(pcm, 0, 1000) < voice / 1000);
}
