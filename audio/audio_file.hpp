// Audio files through libsndfile: any format it reads in (WAV, FLAC, Ogg
// Vorbis/Opus, ...), any rate and channel count, delivered as 48 kHz mono
// 20 ms frames (downmixed, resampled with speexdsp); written out as 48 kHz
// mono in the format the file name's extension names. The deterministic audio
// path every voice test uses.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/expected.hpp"

namespace tsunagu::audio {

inline constexpr int rate = 48000;
inline constexpr size_t frame_samples = 960;  // 20 ms, mono

class AudioFileReader {
 public:
  // Says why not: missing, unreadable, not audio, no frames, over max_seconds.
  static Expected<std::unique_ptr<AudioFileReader>, std::string> open(const std::string& path);
  // The same from bytes in memory (at most max_memory_bytes), through the
  // same decoding path: what the fuzz target feeds.
  static Expected<std::unique_ptr<AudioFileReader>, std::string> open_memory(std::span<const uint8_t> data);
  virtual ~AudioFileReader() = default;
  // The next 20 ms (zero-filled past the end); the samples that came from the
  // file, 0 once it is exhausted. A file that turns out truncated or corrupt
  // midway ends there, and error() says so.
  virtual size_t read_frame(std::span<int16_t, frame_samples> out) = 0;
  virtual const std::string& error() const = 0;  // empty unless reading stopped early
  virtual double seconds() const = 0;  // the file's length as its header says
  virtual int source_rate() const = 0;
  virtual int source_channels() const = 0;

  static constexpr double max_seconds = 3600;
  static constexpr size_t max_memory_bytes = 16 << 20;
  static constexpr int max_channels = 64;
  static constexpr int min_rate = 1000, max_rate = 384000;
};

class AudioFileWriter {
 public:
  // By extension: .wav (16-bit PCM), .flac, .ogg or .opus (Ogg Opus). Written
  // to a temporary beside PATH and renamed by finish(), so a half-written
  // recording never takes the name.
  static Expected<std::unique_ptr<AudioFileWriter>, std::string> create(const std::string& path);
  virtual ~AudioFileWriter() = default;  // without finish(): the temporary is removed
  virtual bool write(std::span<const int16_t> samples) = 0;  // 48 kHz mono
  virtual Expected<void, std::string> finish() = 0;
  virtual uint64_t samples_written() const = 0;
};

}  // namespace tsunagu::audio
