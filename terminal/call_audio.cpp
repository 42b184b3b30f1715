#include "terminal/call_audio.hpp"

#include <algorithm>

namespace tsunagu::terminal {

Expected<std::unique_ptr<CallAudio>, std::string> CallAudio::open(const AudioOptions& options) {
  auto audio = std::make_unique<CallAudio>();
  if (!options.input_file.empty()) {
    auto reader = audio::AudioFileReader::open(options.input_file);
    if (!reader) return Unexpected("--audio-in: " + reader.error());  // it names the file
    audio->reader_ = std::move(*reader);
    audio->input_name_ = options.input_file;
  }
  audio->capture_device_ = options.devices && options.input_file.empty();
  audio->play_device_ = options.devices && options.output_file.empty();
  if (audio->capture_device_ || audio->play_device_) {
    auto device = audio::AudioDevice::open(options.input_device, options.output_device, audio->capture_device_,
                                           audio->play_device_);
    if (!device) return Unexpected("--audio: " + device.error());
    audio->device_ = std::move(*device);
    if (audio->capture_device_ && audio->play_device_ && options.echo_cancellation)
      audio->canceller_ = audio::EchoCanceller::create();
  }
  // The recording is created last: nothing is left behind when an input fails.
  if (!options.output_file.empty()) {
    auto writer = audio::AudioFileWriter::create(options.output_file);
    if (!writer) return Unexpected("--audio-out: " + writer.error());
    audio->writer_ = std::move(*writer);
    audio->output_name_ = options.output_file;
  }
  return audio;
}

const int16_t* CallAudio::capture() {
  if (reader_ != nullptr) {
    if (input_ended_) return nullptr;
    if (reader_->read_frame(captured_) == 0) {
      input_ended_ = true;
      return nullptr;
    }
    return captured_.data();
  }
  if (!capture_device_ || !device_->read_frame(captured_)) return nullptr;
  if (canceller_ == nullptr) return captured_.data();
  canceller_->captured(captured_, cleaned_);
  return cleaned_.data();
}

void CallAudio::start_warning_tone() {
  warning_tone_.emplace(audio::Tone::units_low, -12);
  warning_frames_left_ = (150 + 100 + 150 + 100 + 150) / 20;  // the three beeps, not the pause after
}

void CallAudio::play(std::span<const int16_t, 960> pcm) {
  if (warning_frames_left_ > 0) {
    --warning_frames_left_;
    warning_tone_->next_frame(tone_);
    for (size_t i = 0; i < mixed_.size(); ++i)
      mixed_[i] = static_cast<int16_t>(std::clamp(int32_t{pcm[i]} + int32_t{tone_[i]}, -32768, 32767));
    pcm = mixed_;
  }
  if (writer_ != nullptr) writer_->write(pcm);
  if (play_device_) {
    device_->write_frame(pcm);
    if (canceller_ != nullptr) canceller_->played(pcm);
  }
}

Expected<void, std::string> CallAudio::finish() {
  if (finished_) return {};
  finished_ = true;
  device_.reset();
  if (writer_ == nullptr) return {};
  auto done = writer_->finish();
  writer_.reset();
  if (!done) return Unexpected("--audio-out " + output_name_ + ": " + done.error());
  return {};
}

std::string CallAudio::problem() const {
  if (reader_ != nullptr && !reader_->error().empty()) return "--audio-in " + input_name_ + ": " + reader_->error();
  if (device_ != nullptr) return device_->failure();
  return {};
}

std::string CallAudio::device_counters() const {
  if (device_ == nullptr) return {};
  audio::DeviceStats s = device_->stats();
  return "devices: " + std::to_string(s.frames_captured) + " frames captured (" + std::to_string(s.capture_overruns) +
         " dropped), " + std::to_string(s.frames_played) + " played (" + std::to_string(s.playback_underruns) +
         " underruns, " + std::to_string(s.playback_overruns) + " dropped)";
}

std::string CallAudio::describe() const {
  std::string in = reader_ ? input_name_ : capture_device_ ? "microphone" : "silence";
  std::string out = writer_ ? output_name_ : "";
  if (play_device_) out += out.empty() ? "speaker" : " and speaker";
  if (out.empty()) out = "nowhere";
  std::string text = "audio: Opus 48 kHz mono from " + in + ", heard into " + out;
  if (device_) text += " (" + device_->describe() + ")";
  if (canceller_) text += ", echo cancellation on";
  return text;
}

}  // namespace tsunagu::terminal
