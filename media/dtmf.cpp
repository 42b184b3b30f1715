#include "media/dtmf.hpp"

#include <cmath>
#include <numbers>
#include <string>

namespace tsunagu::media {

namespace {

constexpr std::string_view digits_by_event = "0123456789*#ABCD";
constexpr double row_hz[4] = {697, 770, 852, 941};
constexpr double column_hz[4] = {1209, 1336, 1477, 1633};

}  // namespace

std::optional<uint8_t> dtmf_event_for(char digit) {
  if (digit >= 'a' && digit <= 'd') digit = static_cast<char>(digit - 'a' + 'A');
  size_t at = digits_by_event.find(digit);
  if (at == std::string_view::npos) return std::nullopt;
  return static_cast<uint8_t>(at);
}

std::optional<char> dtmf_digit_for(uint8_t event) {
  if (event >= digits_by_event.size()) return std::nullopt;
  return digits_by_event[event];
}

std::optional<DtmfFrequencies> dtmf_frequencies(uint8_t event) {
  // Keypad position: row 1 = 1 2 3 A, row 2 = 4 5 6 B, row 3 = 7 8 9 C, row 4 = * 0 # D.
  static constexpr int row_of[16] = {3, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 0, 1, 2, 3};
  static constexpr int column_of[16] = {1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 3, 3, 3, 3};
  if (event >= 16) return std::nullopt;
  return DtmfFrequencies{row_hz[row_of[event]], column_hz[column_of[event]]};
}

void DtmfToneGenerator::start(uint8_t event) {
  frequencies_ = dtmf_frequencies(event).value_or(DtmfFrequencies{0, 0});
  low_phase_ = high_phase_ = 0;
}

void DtmfToneGenerator::render(FrameOut pcm) {
  const double two_pi = 2 * std::numbers::pi;
  double low_step = two_pi * frequencies_.low_hz / sample_rate;
  double high_step = two_pi * frequencies_.high_hz / sample_rate;
  for (auto& sample : pcm) {
    double v = dtmf_tone_amplitude * (std::sin(low_phase_) + std::sin(high_phase_));
    sample = static_cast<int16_t>(std::lround(v));
    low_phase_ = std::fmod(low_phase_ + low_step, two_pi);
    high_phase_ = std::fmod(high_phase_ + high_step, two_pi);
  }
}

bool DtmfSender::queue(std::string_view digits) {
  std::deque<uint8_t> events;
  for (char c : digits) {
    auto event = dtmf_event_for(c);
    if (!event) return false;
    events.push_back(*event);
  }
  pending_.insert(pending_.end(), events.begin(), events.end());
  return true;
}

std::optional<EventPacket> DtmfSender::next_frame() {
  if (pending_.empty()) return std::nullopt;
  uint32_t frame = frame_;
  uint8_t event = pending_.front();
  if (++frame_ == dtmf_event_frames + dtmf_gap_frames) {
    frame_ = 0;
    pending_.pop_front();
  }
  if (frame >= dtmf_event_frames + dtmf_end_packets - 1) return std::nullopt;  // the silent rest of the gap
  EventPacket packet;
  packet.event.event = event;
  packet.event.volume = 10;  // -10 dBm0, as the tone is rendered
  uint32_t frames_of_event = std::min(frame + 1, dtmf_event_frames);
  packet.event.duration = static_cast<uint16_t>(frames_of_event * frame_samples);
  packet.event.end = frame + 1 >= dtmf_event_frames;
  packet.timestamp_offset = frame;
  packet.marker = frame == 0;
  return packet;
}

}  // namespace tsunagu::media
