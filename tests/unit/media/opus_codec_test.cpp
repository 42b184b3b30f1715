#include "media/opus_codec.hpp"

#include <doctest/doctest.h>

#include <array>
#include <vector>

#include "signal.hpp"

using namespace tsunagu;
using namespace tsunagu::media;

namespace {

std::array<int16_t, frame_samples> frame_of_signal(size_t index) {
  std::array<int16_t, frame_samples> f{};
  for (size_t i = 0; i < frame_samples; ++i) f[i] = media_test::test_signal(index * frame_samples + i);
  return f;
}

}  // namespace

TEST_CASE("opus: 50 frames round trip and the output correlates with the input after the codec delay") {
  auto encoder = OpusVoiceEncoder::create(32000, true);
  REQUIRE(encoder);
  auto decoder = OpusVoiceDecoder::create();
  REQUIRE(decoder);
  std::vector<int16_t> in, out;
  for (size_t k = 0; k < 50; ++k) {
    auto f = frame_of_signal(k);
    in.insert(in.end(), f.begin(), f.end());
    auto packet = encoder->encode(f);
    REQUIRE(packet);
    CHECK(packet->size() > 10);
    CHECK(packet->size() <= max_opus_packet);
    CHECK(is_opus_20ms_packet(*packet));
    std::array<int16_t, frame_samples> pcm{};
    REQUIRE(decoder->decode(*packet, pcm));
    out.insert(out.end(), pcm.begin(), pcm.end());
  }
  int lookahead = encoder->lookahead_samples();
  CHECK(lookahead > 0);
  CHECK(lookahead < 960);
  auto best = media_test::best_lag(in, out, 960, 9600, 24000);
  MESSAGE("opus round trip: correlation " << best.correlation << " at lag " << best.lag << " (lookahead "
                                          << lookahead << ")");
  CHECK(best.correlation > 0.9);
  CHECK(best.lag == doctest::Approx(lookahead).epsilon(0.2));
}

TEST_CASE("opus: FEC from the next packet rebuilds a lost frame better than PLC") {
  auto encoder = OpusVoiceEncoder::create(32000, true);
  REQUIRE(encoder);
  REQUIRE(encoder->set_packet_loss_percent(20));
  CHECK(encoder->packet_loss_percent() == 20);
  std::vector<Bytes> packets;
  std::vector<int16_t> in;
  for (size_t k = 0; k < 40; ++k) {
    auto f = frame_of_signal(k);
    in.insert(in.end(), f.begin(), f.end());
    packets.push_back(*encoder->encode(f));
  }
  int lag = encoder->lookahead_samples();
  // SILK codes FEC (LBRR) only for frames its VAD finds active: lose a frame whose next packet carries it.
  size_t lost = 25;
  while (lost < 38 && !opus_packet_has_fec(packets[lost + 1])) ++lost;
  REQUIRE(opus_packet_has_fec(packets[lost + 1]));
  // Decode the frames before it three times, then the lost one: decoded, rebuilt by FEC, concealed.
  auto reference = OpusVoiceDecoder::create();
  auto with_fec = OpusVoiceDecoder::create();
  auto with_plc = OpusVoiceDecoder::create();
  REQUIRE((reference && with_fec && with_plc));
  std::array<int16_t, frame_samples> pcm{};
  for (size_t k = 0; k < lost; ++k) {
    REQUIRE(reference->decode(packets[k], pcm));
    REQUIRE(with_fec->decode(packets[k], pcm));
    REQUIRE(with_plc->decode(packets[k], pcm));
  }
  std::array<int16_t, frame_samples> fec{}, plc{}, clean{};
  REQUIRE(reference->decode(packets[lost], clean));
  REQUIRE(with_fec->decode_fec(packets[lost + 1], fec));
  REQUIRE(with_plc->conceal(plc));
  std::vector<int16_t> clean_v(clean.begin(), clean.end()), fec_v(fec.begin(), fec.end()), plc_v(plc.begin(), plc.end());
  double fec_match = media_test::correlation(clean_v, fec_v, 0, 0, frame_samples);
  double plc_match = media_test::correlation(clean_v, plc_v, 0, 0, frame_samples);
  MESSAGE("lost frame vs clean decode: FEC " << fec_match << ", PLC " << plc_match << " (lag " << lag << ")");
  CHECK(fec_match > 0.7);
  CHECK(fec_match > plc_match);
}

TEST_CASE("opus: clear errors for bad settings and bad packets") {
  CHECK_FALSE(OpusVoiceEncoder::create(100, true));
  CHECK_FALSE(OpusVoiceEncoder::create(1'000'000, true));
  CHECK_FALSE(OpusVoiceEncoder::create(32000, true, 11));
  CHECK(OpusVoiceEncoder::create(32000, true, 0));
  auto encoder = OpusVoiceEncoder::create(24000, false);
  REQUIRE(encoder);
  CHECK(encoder->bitrate() == 24000);
  REQUIRE(encoder->set_bitrate(16000));
  CHECK(encoder->bitrate() == 16000);
  auto bad_bitrate = encoder->set_bitrate(10);
  REQUIRE_FALSE(bad_bitrate);
  CHECK(bad_bitrate.error().find("bitrate") != std::string::npos);
  CHECK_FALSE(encoder->set_packet_loss_percent(-1));
  CHECK_FALSE(encoder->set_packet_loss_percent(101));
  auto decoder = OpusVoiceDecoder::create();
  REQUIRE(decoder);
  std::array<int16_t, frame_samples> pcm{};
  CHECK_FALSE(decoder->decode(Bytes{}, pcm));
  Bytes garbage{std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};  // code 3 TOC, frame count 63: too long
  auto failed = decoder->decode(garbage, pcm);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().find("opus") != std::string::npos);
  CHECK_FALSE(decoder->decode_fec(garbage, pcm));
  // A 10 ms packet is well-formed Opus but not what we accept.
  Bytes ten_ms{std::byte{0x08 << 3 | 0}, std::byte{0}};  // config 8 (SILK NB 10 ms), code 0
  CHECK_FALSE(is_opus_20ms_packet(ten_ms));
  CHECK_FALSE(decoder->decode(ten_ms, pcm));
  REQUIRE(decoder->conceal(pcm));  // PLC before any packet: fine, silence-ish
}
