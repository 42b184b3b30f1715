// DTMF: the digits and their RFC 4733 event codes, the ITU-T Q.23 tones, and
// the telephone-event packets a sender emits per 20 ms frame.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>

#include "media/audio_frame.hpp"
#include "media/rtp.hpp"

namespace tsunagu::media {

// 0-9 -> 0-9, * -> 10, # -> 11, A-D -> 12-15 (RFC 4733 3.2); lower case a-d accepted.
std::optional<uint8_t> dtmf_event_for(char digit);
std::optional<char> dtmf_digit_for(uint8_t event);  // upper case A-D

struct DtmfFrequencies {
  double low_hz, high_hz;
};
std::optional<DtmfFrequencies> dtmf_frequencies(uint8_t event);

// Each tone at -10 dBFS (peak 10^(-10/20) of full scale), so the pair peaks at
// about -4 dBFS: loud enough for any decoder, never clipping.
inline constexpr double dtmf_tone_amplitude = 10362.0;

// Phase-continuous across frames: start() a new event, then render() each
// 20 ms; the same event keeps its phase so there is no click between frames.
class DtmfToneGenerator {
 public:
  void start(uint8_t event);
  void render(FrameOut pcm);

 private:
  DtmfFrequencies frequencies_{0, 0};
  double low_phase_ = 0, high_phase_ = 0;
};

inline constexpr uint32_t dtmf_event_frames = 5;  // 100 ms of event
inline constexpr uint32_t dtmf_gap_frames = 3;    // 60 ms of gap
inline constexpr uint32_t dtmf_end_packets = 3;   // RFC 4733 2.5.1.4

// What the sender puts on the wire in one 20 ms frame of a digit.
struct EventPacket {
  TelephoneEvent event;
  uint32_t timestamp_offset = 0;  // frames back from this frame to the event's start
  bool marker = false;            // the first packet of an event
};

// The event sequence: per digit 5 frames of event (durations 960, 1920, ...,
// 4800; the fifth is the first end packet), then 3 gap frames of which the
// first two repeat the end packet. No Opus is sent for any of the 8 frames.
class DtmfSender {
 public:
  bool queue(std::string_view digits);  // false, nothing queued, on a non-DTMF character
  bool active() const { return !pending_.empty(); }
  // Call once per frame while active(): the packet for this frame, if any.
  std::optional<EventPacket> next_frame();

 private:
  std::deque<uint8_t> pending_;
  uint32_t frame_ = 0;  // within the current digit's 8 frames
};

}  // namespace tsunagu::media
