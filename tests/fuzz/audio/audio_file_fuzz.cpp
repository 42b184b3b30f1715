// The file reader over arbitrary bytes: libsndfile's parsers for every format
// it knows (WAV, FLAC, Ogg, AIFF, ...) behind our limits, then the downmix and
// resampler. Any input must give an error or bounded frames, never a crash.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "audio/audio_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu::audio;
  auto reader = AudioFileReader::open_memory(std::span<const uint8_t>(data, size));
  if (!reader) return 0;
  if ((*reader)->source_rate() < AudioFileReader::min_rate || (*reader)->source_channels() < 1 ||
      (*reader)->seconds() > AudioFileReader::max_seconds)
    std::abort();  // the limits open() promises
  std::array<int16_t, frame_samples> frame{};
  // At most 5 s of output per input: enough to reach any decoder state a
  // small input can hold, and it keeps each run fast.
  for (int i = 0; i < 250; ++i) {
    size_t got = (*reader)->read_frame(frame);
    if (got > frame_samples) std::abort();
    if (got == 0) break;
  }
  return 0;
}
