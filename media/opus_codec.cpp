#include "media/opus_codec.hpp"

#include <opus/opus.h>

namespace tsunagu::media {

namespace {

std::string opus_failure(const char* what, int code) { return std::string(what) + ": " + opus_strerror(code); }

const unsigned char* as_uchar(ByteView b) { return reinterpret_cast<const unsigned char*>(b.data()); }

}  // namespace

void OpusVoiceEncoder::Free::operator()(OpusEncoder* e) const { opus_encoder_destroy(e); }
void OpusVoiceDecoder::Free::operator()(OpusDecoder* d) const { opus_decoder_destroy(d); }

Expected<OpusVoiceEncoder, std::string> OpusVoiceEncoder::create(int bitrate, bool fec, int complexity) {
  int error = OPUS_OK;
  std::unique_ptr<OpusEncoder, Free> encoder(opus_encoder_create(sample_rate, 1, OPUS_APPLICATION_VOIP, &error));
  if (error != OPUS_OK || !encoder) return Unexpected(opus_failure("opus_encoder_create", error));
  if (int rc = opus_encoder_ctl(encoder.get(), OPUS_SET_INBAND_FEC(fec ? 1 : 0)); rc != OPUS_OK)
    return Unexpected(opus_failure("OPUS_SET_INBAND_FEC", rc));
  if (int rc = opus_encoder_ctl(encoder.get(), OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)); rc != OPUS_OK)
    return Unexpected(opus_failure("OPUS_SET_SIGNAL", rc));
  if (int rc = opus_encoder_ctl(encoder.get(), OPUS_SET_COMPLEXITY(complexity)); rc != OPUS_OK)
    return Unexpected(opus_failure("OPUS_SET_COMPLEXITY", rc));
  OpusVoiceEncoder result(std::move(encoder), bitrate);
  if (auto set = result.set_bitrate(bitrate); !set) return Unexpected(set.error());
  return result;
}

Expected<Bytes, std::string> OpusVoiceEncoder::encode(FrameView pcm) {
  Bytes out(max_opus_packet);
  int n = opus_encode(encoder_.get(), pcm.data(), static_cast<int>(pcm.size()), reinterpret_cast<unsigned char*>(out.data()),
                      static_cast<opus_int32>(out.size()));
  if (n < 0) return Unexpected(opus_failure("opus_encode", n));
  out.resize(static_cast<size_t>(n));
  return out;
}

Expected<void, std::string> OpusVoiceEncoder::set_packet_loss_percent(int percent) {
  if (percent < 0 || percent > 100) return Unexpected(std::string("packet loss percent must be 0-100"));
  if (int rc = opus_encoder_ctl(encoder_.get(), OPUS_SET_PACKET_LOSS_PERC(percent)); rc != OPUS_OK)
    return Unexpected(opus_failure("OPUS_SET_PACKET_LOSS_PERC", rc));
  loss_percent_ = percent;
  return {};
}

Expected<void, std::string> OpusVoiceEncoder::set_bitrate(int bitrate) {
  // Opus accepts 500..512000 b/s; we refuse rather than let it clamp silently.
  if (bitrate < 6000 || bitrate > 510000) return Unexpected(std::string("Opus bitrate must be 6000-510000 b/s"));
  if (int rc = opus_encoder_ctl(encoder_.get(), OPUS_SET_BITRATE(bitrate)); rc != OPUS_OK)
    return Unexpected(opus_failure("OPUS_SET_BITRATE", rc));
  bitrate_ = bitrate;
  return {};
}

int OpusVoiceEncoder::lookahead_samples() const {
  opus_int32 lookahead = 0;
  opus_encoder_ctl(encoder_.get(), OPUS_GET_LOOKAHEAD(&lookahead));
  return lookahead;
}

Expected<OpusVoiceDecoder, std::string> OpusVoiceDecoder::create() {
  int error = OPUS_OK;
  std::unique_ptr<OpusDecoder, Free> decoder(opus_decoder_create(sample_rate, 1, &error));
  if (error != OPUS_OK || !decoder) return Unexpected(opus_failure("opus_decoder_create", error));
  return OpusVoiceDecoder(std::move(decoder));
}

Expected<void, std::string> OpusVoiceDecoder::run(const unsigned char* data, size_t size, FrameOut pcm, int fec) {
  int n = opus_decode(decoder_.get(), data, static_cast<opus_int32>(size), pcm.data(), static_cast<int>(pcm.size()), fec);
  if (n < 0) return Unexpected(opus_failure("opus_decode", n));
  if (static_cast<size_t>(n) != pcm.size()) return Unexpected(std::string("opus_decode: packet is not one 20 ms frame"));
  return {};
}

Expected<void, std::string> OpusVoiceDecoder::decode(ByteView packet, FrameOut pcm) {
  if (packet.empty()) return Unexpected(std::string("opus_decode: empty packet"));
  if (!is_opus_20ms_packet(packet)) return Unexpected(std::string("opus_decode: not one well-formed 20 ms Opus packet"));
  return run(as_uchar(packet), packet.size(), pcm, 0);
}

Expected<void, std::string> OpusVoiceDecoder::decode_fec(ByteView next_packet, FrameOut pcm) {
  if (!is_opus_20ms_packet(next_packet)) return Unexpected(std::string("opus FEC: not one well-formed 20 ms Opus packet"));
  return run(as_uchar(next_packet), next_packet.size(), pcm, 1);
}

Expected<void, std::string> OpusVoiceDecoder::conceal(FrameOut pcm) { return run(nullptr, 0, pcm, 0); }

bool is_opus_20ms_packet(ByteView payload) {
  if (payload.empty() || payload.size() > max_opus_packet) return false;
  // opus_packet_parse checks the TOC and frame lengths against the packet size.
  const unsigned char* frames[48];
  opus_int16 sizes[48];
  int count = opus_packet_parse(as_uchar(payload), static_cast<opus_int32>(payload.size()), nullptr, frames, sizes, nullptr);
  if (count < 1) return false;
  return opus_packet_get_nb_samples(as_uchar(payload), static_cast<opus_int32>(payload.size()), sample_rate) ==
         static_cast<int>(frame_samples);
}

bool opus_packet_has_fec(ByteView payload) {
  if (!is_opus_20ms_packet(payload)) return false;
  uint8_t toc = std::to_integer<uint8_t>(payload[0]);
  if ((toc >> 3) >= 16) return false;  // configurations 16-31 are CELT only
  const unsigned char* frames[48];
  opus_int16 sizes[48];
  if (opus_packet_parse(as_uchar(payload), static_cast<opus_int32>(payload.size()), nullptr, frames, sizes, nullptr) < 1 ||
      sizes[0] < 1)
    return false;
  // A mono SILK frame starts with its VAD flag and then its LBRR flag, each a
  // range-coded symbol of probability 1/2, so they are the first two bits.
  return ((frames[0][0] >> 6) & 1) != 0;
}

}  // namespace tsunagu::media
