// Sound devices: PulseAudio's simple API (also what PipeWire serves), ALSA
// where no sound server runs. Capture and playback each run on a thread of
// their own that moves 20 ms frames of 48 kHz mono through a bounded queue;
// the loop thread only polls the queues once per 20 ms, so it never blocks on
// a device. A device at another rate is resampled (speexdsp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/expected.hpp"

namespace tsunagu::audio {

enum class Backend : uint8_t { automatic, pulse, alsa };

struct DeviceSpec {
  Backend backend = Backend::automatic;  // automatic: PulseAudio when a server answers, else ALSA
  std::string name;                      // empty: the default source/sink (pulse) or "default" (alsa)
};

struct DeviceStats {
  uint64_t frames_captured = 0, frames_played = 0;
  uint64_t capture_overruns = 0;   // frames dropped because the loop did not take them
  uint64_t playback_underruns = 0; // 20 ms of silence played because no frame was ready (after the first one)
  uint64_t playback_overruns = 0;  // frames write_frame dropped because the queue was full (oldest first)
};

class AudioDevice {
 public:
  // Opens the capture side (capture=true) and/or the playback side; says why
  // not (no server, no such device, busy).
  static Expected<std::unique_ptr<AudioDevice>, std::string> open(const DeviceSpec& input, const DeviceSpec& output,
                                                                  bool capture, bool playback);
  virtual ~AudioDevice() = default;  // stops and joins both threads
  virtual bool read_frame(std::span<int16_t, 960> out) = 0;   // false: none ready yet
  virtual void write_frame(std::span<const int16_t, 960> pcm) = 0;  // dropped (counted) when the queue is full
  virtual std::string failure() const = 0;  // non-empty once a side has stopped on an error
  virtual DeviceStats stats() const = 0;
  virtual std::string describe() const = 0;  // "pulse: alsa_output.pci... @ 44100 Hz" for the CLI
};

Backend parse_backend(const std::string& name, bool* ok);  // "auto", "pulse", "alsa"

}  // namespace tsunagu::audio
