// Fuzz target: the RTP, RTCP and telephone-event parsers on the whole input,
// then a VoiceSession fed the input as a sequence of packets (each a 2-byte
// big-endian length and that many bytes), with a playout after each and a
// capture every few. Nothing may crash, read out of bounds or break the
// counters' arithmetic; what parses must write back to the same fields.
//
// Seeds (media_packets_corpus/): single real packets (Opus RTP, an SR with a
// report block, a telephone-event) and framed sequences of a real call's
// packets, written by tests/unit/media/voice_session_test.cpp when
// MEDIA_WRITE_CORPUS names a directory.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "media/rtp.hpp"
#include "media/voice_session.hpp"

using namespace tsunagu;
using namespace tsunagu::media;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_parsers(ByteView input) {
  (void)is_rtcp(input);
  if (auto rtp = parse_rtp(input)) {
    require(input.size() >= rtp_header_size && input.size() <= max_packet_size);
    require(rtp->payload.data() >= input.data() && rtp->payload.data() + rtp->payload.size() <= input.data() + input.size());
    require(rtp->header.csrcs.size() <= max_csrc_count);
    auto again = parse_rtp(write_rtp(rtp->header, rtp->payload));
    require(again.has_value());
    require(again->header.sequence == rtp->header.sequence && again->header.timestamp == rtp->header.timestamp &&
            again->header.ssrc == rtp->header.ssrc && again->header.payload_type == rtp->header.payload_type &&
            again->header.marker == rtp->header.marker && again->header.csrcs == rtp->header.csrcs);
    require(again->payload.size() == rtp->payload.size());
  }
  if (auto reports = parse_rtcp(input)) {
    require(!reports->empty());
    for (const RtcpReport& report : *reports) {
      require(report.blocks.size() <= 31);
      auto again = parse_rtcp(write_rtcp_report(report));
      require(again.has_value() && again->size() == 1);
      const RtcpReport& r = again->front();
      require(r.ssrc == report.ssrc && r.sender.has_value() == report.sender.has_value());
      require(r.blocks.size() == report.blocks.size());
      for (size_t i = 0; i < r.blocks.size(); ++i) {
        require(r.blocks[i].cumulative_lost == report.blocks[i].cumulative_lost);
        require(r.blocks[i].last_sr == report.blocks[i].last_sr);
      }
    }
  }
  if (auto event = parse_telephone_event(input)) {
    require(input.size() == 4 && event->volume <= 63);
    auto written = write_telephone_event(*event);
    require(written.has_value());
    require(parse_telephone_event(*written)->duration == event->duration);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  check_parsers(input);

  VoiceConfig config;
  config.ssrc = 0x0b0b0b0b;
  auto session = VoiceSession::create(config);  // fresh per input, so an input replays the same way
  require(session.has_value());
  VoiceSession& s = **session;

  uint64_t now_ns = 1'000'000'000'000;
  static const std::array<int16_t, frame_samples> silence{};
  std::array<int16_t, frame_samples> out{};
  size_t offset = 0, packets = 0;
  while (size - offset >= 2 && packets < 256) {
    size_t length = load_be16(input.data() + offset);
    offset += 2;
    length = std::min(length, size - offset);
    ByteView packet = input.subspan(offset, length);
    offset += length;
    ++packets;
    check_parsers(packet);
    s.received(packet, now_ns);
    s.playout(out, now_ns);
    if (packets % 8 == 0) s.capture(silence, now_ns);  // also builds the reports from what was received
    now_ns += frame_ns;
  }
  (void)s.take_packets();
  const VoiceStats& stats = s.stats();
  require(stats.packets_received + stats.dropped + stats.duplicates + stats.reports_received <= packets);
  require(stats.lost < (uint64_t{1} << 33));
  for (char c : stats.digits_received) require(std::string_view("0123456789*#ABCD").find(c) != std::string_view::npos);
  require(s.take_digits() == stats.digits_received);
  require(!voice_stats_json(stats).empty());
  return 0;
}
