// The one place libopus shows: an encoder and a decoder for 48 kHz mono 20 ms
// frames in VOIP mode (RFC 7587 payloads), owned RAII, with errors as text.
#pragma once

#include <memory>
#include <string>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "media/audio_frame.hpp"

struct OpusEncoder;
struct OpusDecoder;

namespace tsunagu::media {

// The largest Opus packet for one frame (RFC 6716 3.4).
inline constexpr size_t max_opus_packet = 1275;

class OpusVoiceEncoder {
 public:
  // complexity: libopus' 0-10 (its default is 9).
  static Expected<OpusVoiceEncoder, std::string> create(int bitrate, bool fec, int complexity = 9);

  Expected<Bytes, std::string> encode(FrameView pcm);
  // The loss the encoder should expect, 0-100: more loss, stronger in-band FEC.
  Expected<void, std::string> set_packet_loss_percent(int percent);
  Expected<void, std::string> set_bitrate(int bitrate);
  int bitrate() const { return bitrate_; }
  int packet_loss_percent() const { return loss_percent_; }
  int lookahead_samples() const;  // the codec delay the decoder's output lags by

 private:
  struct Free {
    void operator()(OpusEncoder* e) const;
  };
  explicit OpusVoiceEncoder(std::unique_ptr<OpusEncoder, Free> encoder, int bitrate)
      : encoder_(std::move(encoder)), bitrate_(bitrate) {}
  std::unique_ptr<OpusEncoder, Free> encoder_;
  int bitrate_;
  int loss_percent_ = 0;
};

class OpusVoiceDecoder {
 public:
  static Expected<OpusVoiceDecoder, std::string> create();

  // A packet must hold exactly one 20 ms frame's worth of samples.
  Expected<void, std::string> decode(ByteView packet, FrameOut pcm);
  // The frame before `next_packet`, rebuilt from the in-band FEC it carries
  // (or concealed by Opus when it carries none).
  Expected<void, std::string> decode_fec(ByteView next_packet, FrameOut pcm);
  // Packet loss concealment: Opus extrapolates the frame from what came before.
  Expected<void, std::string> conceal(FrameOut pcm);

 private:
  struct Free {
    void operator()(OpusDecoder* d) const;
  };
  explicit OpusVoiceDecoder(std::unique_ptr<OpusDecoder, Free> decoder) : decoder_(std::move(decoder)) {}
  Expected<void, std::string> run(const unsigned char* data, size_t size, FrameOut pcm, int fec);
  std::unique_ptr<OpusDecoder, Free> decoder_;
};

// True when `payload` is a well-formed Opus packet of exactly one 20 ms frame
// at 48 kHz (what we send and all we accept).
bool is_opus_20ms_packet(ByteView payload);
// True when a 20 ms mono packet carries in-band FEC (LBRR) for the frame before
// it: only SILK and hybrid packets can (RFC 6716 4.2.3, 4.2.4).
bool opus_packet_has_fec(ByteView payload);

}  // namespace tsunagu::media
