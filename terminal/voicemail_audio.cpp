#include "terminal/voicemail_audio.hpp"

#include <poll.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>

#include "audio/audio_file.hpp"

namespace tsunagu::terminal {
namespace {

constexpr double frame_seconds = static_cast<double>(audio::frame_samples) / audio::rate;

// Enter (or end of input) on a terminal's stdin, without blocking.
bool stdin_says_stop() {
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return false;
  char buffer[64];
  return ::read(STDIN_FILENO, buffer, sizeof buffer) >= 0;  // a line, or EOF (0)
}

}  // namespace

Expected<double, std::string> record_message(const std::string& from, const audio::DeviceSpec& microphone,
                                             double max_seconds, const std::string& ogg_path) {
  auto writer = audio::AudioFileWriter::create(ogg_path);
  if (!writer) return Unexpected(writer.error());
  std::array<int16_t, audio::frame_samples> frame{};
  uint64_t frames = 0;
  const auto max_frames = static_cast<uint64_t>(max_seconds / frame_seconds);
  if (!from.empty()) {
    auto reader = audio::AudioFileReader::open(from);
    if (!reader) return Unexpected(reader.error());  // it names the file
    if ((*reader)->seconds() > max_seconds)
      return Unexpected(from + ": " + std::to_string(static_cast<int>((*reader)->seconds())) +
                        " s is longer than a message may be (" + std::to_string(static_cast<int>(max_seconds)) + " s)");
    while (frames < max_frames) {
      size_t got = (*reader)->read_frame(frame);
      if (got == 0) break;
      if (!(*writer)->write(std::span<const int16_t>(frame.data(), got))) return Unexpected("writing " + ogg_path + " failed");
      ++frames;
    }
    if (!(*reader)->error().empty()) return Unexpected(from + ": " + (*reader)->error());
  } else {
    auto device = audio::AudioDevice::open(microphone, {}, true, false);
    if (!device) return Unexpected("microphone: " + device.error());
    while (frames < max_frames) {
      if (stdin_says_stop()) break;
      if (!(*device)->failure().empty()) return Unexpected("microphone: " + (*device)->failure());
      if (!(*device)->read_frame(frame)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      if (!(*writer)->write(frame)) return Unexpected("writing " + ogg_path + " failed");
      ++frames;
    }
  }
  if (frames == 0) return Unexpected("nothing was recorded");
  if (auto finished = (*writer)->finish(); !finished) return Unexpected(finished.error());
  return static_cast<double>(frames) * frame_seconds;
}

Expected<double, std::string> play_message(const std::string& message, const std::string& to,
                                           const audio::DeviceSpec& speaker) {
  auto reader = audio::AudioFileReader::open(message);
  if (!reader) return Unexpected("the message is not a recording this terminal can play (" + reader.error() + ")");
  std::array<int16_t, audio::frame_samples> frame{};
  uint64_t frames = 0;
  if (!to.empty()) {
    auto writer = audio::AudioFileWriter::create(to);
    if (!writer) return Unexpected(to + ": " + writer.error());
    while (size_t got = (*reader)->read_frame(frame)) {
      if (!(*writer)->write(std::span<const int16_t>(frame.data(), got))) return Unexpected("writing " + to + " failed");
      ++frames;
    }
    if (auto finished = (*writer)->finish(); !finished) return Unexpected(to + ": " + finished.error());
  } else {
    auto device = audio::AudioDevice::open({}, speaker, false, true);
    if (!device) return Unexpected("speaker: " + device.error());
    auto next = std::chrono::steady_clock::now();
    while ((*reader)->read_frame(frame) != 0) {
      if (!(*device)->failure().empty()) return Unexpected("speaker: " + (*device)->failure());
      (*device)->write_frame(frame);
      ++frames;
      next += std::chrono::microseconds(20'000);
      std::this_thread::sleep_until(next);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the device's own buffer drains
  }
  if (!(*reader)->error().empty()) return Unexpected((*reader)->error());
  return static_cast<double>(frames) * frame_seconds;
}

}  // namespace tsunagu::terminal
