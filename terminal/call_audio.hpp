// The audio a call's shell moves 20 ms at a time: captured from a file or a
// device (or nothing: silence) for the call core, and the core's playout into
// a recording and/or a device. Opened before the call is placed, so a missing
// or unreadable file, or a device that is not there, stops the command before
// anyone is rung.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "audio/audio_device.hpp"
#include "audio/audio_file.hpp"
#include "audio/echo_canceller.hpp"
#include "audio/tones.hpp"
#include "base/expected.hpp"

namespace tsunagu::terminal {

struct AudioOptions {
  std::string input_file;   // --audio-in FILE (any format libsndfile reads)
  std::string output_file;  // --audio-out FILE (.wav, .flac, .ogg/.opus)
  bool devices = false;     // --audio: the default microphone and speaker for each side without a file
  audio::DeviceSpec input_device, output_device;
  bool echo_cancellation = true;  // only when both sides are devices
  bool any() const { return devices || !input_file.empty() || !output_file.empty(); }
};

class CallAudio {
 public:
  static Expected<std::unique_ptr<CallAudio>, std::string> open(const AudioOptions& options);

  // The next 20 ms captured, valid until the next call; nullptr when there is
  // no input or it has ended (the core then sends silence).
  const int16_t* capture();
  // A file ends, and no input at all has ended from the start; a microphone never ends.
  bool input_ends() const { return reader_ != nullptr || !capture_device_; }
  bool input_ended() const { return input_ended_ || (reader_ == nullptr && !capture_device_); }
  // The frames played from now carry the card's warning tone (three short
  // 1400 Hz beeps) mixed into what the other party says: a card call whose
  // units will not pay the next period (docs/cards.md).
  void start_warning_tone();
  void play(std::span<const int16_t, 960> pcm);
  // The recording renamed into place (or why not); devices stopped.
  Expected<void, std::string> finish();
  // What a device side stopped on, or a file read error; empty otherwise.
  std::string problem() const;
  std::string describe() const;
  // The devices' frame counters ("" without a device), for the call's summary.
  std::string device_counters() const;

 private:
  std::unique_ptr<audio::AudioFileReader> reader_;
  std::unique_ptr<audio::AudioFileWriter> writer_;
  std::unique_ptr<audio::AudioDevice> device_;
  std::unique_ptr<audio::EchoCanceller> canceller_;
  bool capture_device_ = false, play_device_ = false, input_ended_ = false, finished_ = false;
  std::array<int16_t, 960> captured_{}, cleaned_{}, mixed_{}, tone_{};
  std::optional<audio::ToneGenerator> warning_tone_;
  unsigned warning_frames_left_ = 0;
  std::string input_name_, output_name_;
};

}  // namespace tsunagu::terminal
