// One voice call's media, without the loop, devices or the network: 20 ms PCM
// frames from the microphone (or a file) in, RTP/RTCP packets out; packets from
// the peer in, 20 ms frames to play out. Opus at 48 kHz mono, 20 ms, VOIP mode,
// in-band FEC with the peer's reported loss fed back (RFC 7587 payload format);
// RTP (RFC 3550) with sender/receiver reports (loss, jitter, RTT); DTMF as RFC
// 4733 telephone-events, rendered as tones where they are received; speexdsp's
// jitter buffer, with Opus FEC from the next packet when a packet is missing
// and Opus PLC when that is missing too.
//
// The shell (terminal/call_runner.cpp) calls capture() and playout() once per
// 20 ms from one timer, seals each packet from take_packets() into a media
// frame of the call's datagrams, and hands each opened media frame to
// received(). Everything is driven by `now_ns`; nothing here reads a clock.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "media/audio_frame.hpp"

namespace tsunagu::media {

// sample_rate, frame_samples, frame_ns, FrameView and FrameOut: media/audio_frame.hpp.

struct VoiceConfig {
  uint32_t ssrc = 0;  // ours: the shell draws it at random per call
  uint8_t opus_payload_type = 111;
  uint8_t event_payload_type = 101;  // telephone-event/8000 style, clock 48000
  int bitrate = 32000;               // Opus target, bits/s
  bool fec = true;
  // libopus' encoder complexity, 0-10. The encoder is most of a call's CPU:
  // at 32 kbit/s VOIP with FEC, 6 costs half of libopus' default 9 per frame
  // (189 vs 369 us on the benchmark machine) and scores the same on the
  // voice tests' band-envelope correlation (docs/performance.md, Voice).
  int complexity = 6;
  uint64_t report_interval_ns = 1'000'000'000;  // one RTCP report per second
  uint32_t max_jitter_ms = 300;                 // the jitter buffer never holds more
};

struct VoiceStats {
  uint64_t packets_sent = 0, packets_received = 0;  // RTP only
  uint64_t bytes_sent = 0, bytes_received = 0;      // RTP payload bytes
  uint64_t reports_sent = 0, reports_received = 0;  // RTCP
  uint64_t lost = 0;           // expected minus received (RFC 3550 A.3), never negative
  uint64_t concealed = 0;      // frames made by Opus PLC
  uint64_t fec_recovered = 0;  // frames rebuilt from the next packet's FEC
  uint64_t late = 0;           // arrived after their frame was played
  uint64_t duplicates = 0;
  uint64_t dropped = 0;        // malformed, wrong payload type or wrong SSRC
  double jitter_ms = 0;        // interarrival jitter (RFC 3550 6.4.1) of what we receive
  double rtt_ms = -1;          // from the peer's report (LSR/DLSR); -1 while unknown
  double peer_loss_percent = 0;  // the loss the peer reports of our packets (fed to the encoder)
  uint32_t jitter_buffer_ms = 0;  // the buffer's current delay
  int bitrate = 0;             // the encoder's target now
  std::string digits_received;  // every DTMF digit received, in order
};

class VoiceSession {
 public:
  // Fails only when Opus or the jitter buffer cannot be set up (says why).
  static Expected<std::unique_ptr<VoiceSession>, std::string> create(VoiceConfig config);
  virtual ~VoiceSession() = default;

  // One 20 ms frame captured. Muted: silence is encoded (the peer hears it);
  // held: no RTP is sent (the RTP clock runs on), but RTCP reports go on, as
  // RRs, so both ends keep RTT and loss and see the other is there. May also
  // queue an RTCP report.
  virtual void capture(FrameView pcm, uint64_t now_ns) = 0;
  // DTMF digits (0-9 * # A-D, case-insensitive) sent as telephone-events one
  // after another from the next capture(): each 100 ms of event then 60 ms of
  // gap, the end packet sent three times (RFC 4733 2.5.1.4). During a digit's
  // 160 ms (event and gap) no Opus is sent, so the peer hears the tone and
  // then silence. False, and nothing queued, on any other character.
  virtual bool send_digits(std::string_view digits) = 0;
  // An RTP or RTCP packet from the peer (RFC 5761 demultiplexing by payload
  // type). Bad packets are counted in stats().dropped, never thrown.
  virtual void received(ByteView packet, uint64_t now_ns) = 0;
  // The next 20 ms to play: decoded, FEC-recovered, concealed, or silence
  // before the first packet; a received telephone-event is played as its DTMF
  // tone (ITU-T Q.23 frequencies) for the event's duration.
  virtual void playout(FrameOut pcm, uint64_t now_ns) = 0;

  virtual std::vector<Bytes> take_packets() = 0;  // RTP and RTCP to send, in order
  virtual std::string take_digits() = 0;          // DTMF digits received since the last call
  virtual void set_muted(bool muted) = 0;
  virtual void set_held(bool held) = 0;
  virtual bool sending_digits() const = 0;  // digits queued or an event in progress
  virtual const VoiceStats& stats() const = 0;
};

// The counters as one JSON object with snake_case keys (the CLI's --report).
std::string voice_stats_json(const VoiceStats& stats);

}  // namespace tsunagu::media
