#include "media/rtp.hpp"

#include <doctest/doctest.h>

#include <initializer_list>

using namespace tsunagu;
using namespace tsunagu::media;

namespace {

Bytes bytes(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(std::byte(v));
  return out;
}

}  // namespace

TEST_CASE("rtp: a header with marker, payload type, sequence, timestamp and SSRC parses byte by byte") {
  Bytes packet = bytes({0x80, 0xef,              // V=2, no P/X/CC; M=1, PT=111
                        0x12, 0x34,              // sequence
                        0xde, 0xad, 0xbe, 0xef,  // timestamp
                        0x01, 0x02, 0x03, 0x04,  // SSRC
                        0xaa, 0xbb});            // payload
  auto parsed = parse_rtp(packet);
  REQUIRE(parsed);
  CHECK(parsed->header.marker);
  CHECK(parsed->header.payload_type == 111);
  CHECK(parsed->header.sequence == 0x1234);
  CHECK(parsed->header.timestamp == 0xdeadbeef);
  CHECK(parsed->header.ssrc == 0x01020304);
  CHECK(parsed->header.csrcs.empty());
  CHECK_FALSE(parsed->had_extension);
  REQUIRE(parsed->payload.size() == 2);
  CHECK(parsed->payload[0] == std::byte{0xaa});
  CHECK(parsed->payload.data() == packet.data() + 12);  // points into the input
}

TEST_CASE("rtp: write and parse round trip, CSRCs included") {
  RtpHeader header;
  header.marker = false;
  header.payload_type = 101;
  header.sequence = 65535;
  header.timestamp = 42;
  header.ssrc = 0xcafef00d;
  header.csrcs = {1, 2, 3};
  Bytes payload = bytes({1, 2, 3, 4, 5});
  Bytes wire = write_rtp(header, payload);
  CHECK(wire.size() == 12 + 12 + 5);
  auto parsed = parse_rtp(wire);
  REQUIRE(parsed);
  CHECK(parsed->header.payload_type == 101);
  CHECK(parsed->header.sequence == 65535);
  CHECK(parsed->header.timestamp == 42);
  CHECK(parsed->header.ssrc == 0xcafef00d);
  CHECK(parsed->header.csrcs == std::vector<uint32_t>{1, 2, 3});
  CHECK(Bytes(parsed->payload.begin(), parsed->payload.end()) == payload);
}

TEST_CASE("rtp: a header extension is skipped and padding removed") {
  Bytes packet = bytes({0xb1, 0x6f, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,  // V=2 P=1 X=1 CC=1, PT=111
                        0, 0, 0, 9,                                // CSRC
                        0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8,  // extension: 2 words
                        0x55, 0x66,                                // payload
                        0, 0, 3});                                 // 3 bytes of padding
  auto parsed = parse_rtp(packet);
  REQUIRE(parsed);
  CHECK(parsed->had_extension);
  CHECK(parsed->header.csrcs == std::vector<uint32_t>{9});
  REQUIRE(parsed->payload.size() == 2);
  CHECK(parsed->payload[0] == std::byte{0x55});
  CHECK(parsed->payload[1] == std::byte{0x66});
}

TEST_CASE("rtp: every rejection reason") {
  Bytes good = bytes({0x80, 0x6f, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9});
  REQUIRE(parse_rtp(good));
  CHECK(parse_rtp(ByteView(good).first(11)).error() == RtpError::too_short);
  Bytes big(max_packet_size + 1);
  std::copy(good.begin(), good.end(), big.begin());
  CHECK(parse_rtp(big).error() == RtpError::too_long);
  Bytes v1 = good;
  v1[0] = std::byte{0x40};
  CHECK(parse_rtp(v1).error() == RtpError::bad_version);
  Bytes csrc = good;
  csrc[0] = std::byte{0x81};  // one CSRC promised, one byte there
  CHECK(parse_rtp(csrc).error() == RtpError::csrc_truncated);
  Bytes ext = good;
  ext[0] = std::byte{0x90};  // extension header promised, one byte there
  CHECK(parse_rtp(ext).error() == RtpError::extension_truncated);
  Bytes ext_words = bytes({0x90, 0x6f, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 5, 1, 2, 3, 4});
  CHECK(parse_rtp(ext_words).error() == RtpError::extension_truncated);
  Bytes zero_pad = good;
  zero_pad[0] = std::byte{0xa0};
  zero_pad.back() = std::byte{0};
  CHECK(parse_rtp(zero_pad).error() == RtpError::bad_padding);
  Bytes big_pad = good;
  big_pad[0] = std::byte{0xa0};
  big_pad.back() = std::byte{2};  // only one byte follows the header
  CHECK(parse_rtp(big_pad).error() == RtpError::bad_padding);
  Bytes rtcp_pt = good;
  rtcp_pt[1] = std::byte{0xc8};  // 200 = SR: PT 72 with the marker set
  CHECK(parse_rtp(rtcp_pt).error() == RtpError::rtcp_payload_type);
  for (auto e : {RtpError::too_short, RtpError::too_long, RtpError::bad_version, RtpError::csrc_truncated,
                 RtpError::extension_truncated, RtpError::bad_padding, RtpError::rtcp_payload_type})
    CHECK_FALSE(to_string(e).empty());
}

TEST_CASE("rtp: every truncated prefix of a valid packet parses or is refused, never read past") {
  Bytes packet = bytes({0xb1, 0x6f, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 0x55, 0, 2});
  REQUIRE(parse_rtp(packet));
  for (size_t n = 0; n < packet.size(); ++n) {
    auto parsed = parse_rtp(ByteView(packet).first(n));
    if (parsed) CHECK(parsed->payload.data() + parsed->payload.size() <= packet.data() + n);
  }
}

TEST_CASE("rtcp: demultiplexing by the second byte (RFC 5761)") {
  for (int type = 200; type <= 204; ++type) CHECK(is_rtcp(bytes({0x80, type, 0, 0})));
  CHECK_FALSE(is_rtcp(bytes({0x80, 199, 0, 0})));
  CHECK_FALSE(is_rtcp(bytes({0x80, 205, 0, 0})));
  CHECK_FALSE(is_rtcp(bytes({0x80, 111})));  // Opus, marker clear
  CHECK_FALSE(is_rtcp(bytes({0x80, 0xef})));  // Opus, marker set: 239
  CHECK_FALSE(is_rtcp(bytes({0x80})));
}

TEST_CASE("rtcp: a sender report with two blocks round trips") {
  RtcpReport sr;
  sr.ssrc = 0x11223344;
  sr.sender = SenderInfo{0x0102030405060708ull, 960, 50, 4000};
  sr.blocks.push_back(ReportBlock{7, 25, 1234, 0x00010005, 88, 0xaabbccdd, 65536});
  sr.blocks.push_back(ReportBlock{8, 0, -3, 17, 0, 0, 0});
  Bytes wire = write_rtcp_report(sr);
  CHECK(wire.size() == 28 + 48);
  CHECK(wire[0] == std::byte{0x82});
  CHECK(wire[1] == std::byte{200});
  CHECK(load_be16(wire.data() + 2) == wire.size() / 4 - 1);
  auto parsed = parse_rtcp(wire);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  const RtcpReport& r = parsed->front();
  CHECK(r.ssrc == 0x11223344);
  REQUIRE(r.sender);
  CHECK(r.sender->ntp_time == 0x0102030405060708ull);
  CHECK(r.sender->rtp_timestamp == 960);
  CHECK(r.sender->packet_count == 50);
  CHECK(r.sender->octet_count == 4000);
  REQUIRE(r.blocks.size() == 2);
  CHECK(r.blocks[0].ssrc == 7);
  CHECK(r.blocks[0].fraction_lost == 25);
  CHECK(r.blocks[0].cumulative_lost == 1234);
  CHECK(r.blocks[0].highest_sequence == 0x00010005);
  CHECK(r.blocks[0].jitter == 88);
  CHECK(r.blocks[0].last_sr == 0xaabbccdd);
  CHECK(r.blocks[0].delay_since_last_sr == 65536);
  CHECK(r.blocks[1].cumulative_lost == -3);  // 24-bit signed
}

TEST_CASE("rtcp: a compound RR + SDES + BYE parses, the others skipped") {
  RtcpReport rr;
  rr.ssrc = 5;
  rr.blocks.push_back(ReportBlock{6, 1, 2, 3, 4, 5, 6});
  Bytes wire = write_rtcp_report(rr);
  CHECK(wire[1] == std::byte{201});
  Bytes sdes = bytes({0x81, 202, 0, 2, 0, 0, 0, 5, 1, 1, 'x', 0});  // one chunk: CNAME "x"
  Bytes bye = bytes({0x81, 203, 0, 1, 0, 0, 0, 5});
  wire.insert(wire.end(), sdes.begin(), sdes.end());
  wire.insert(wire.end(), bye.begin(), bye.end());
  auto parsed = parse_rtcp(wire);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  CHECK_FALSE(parsed->front().sender);
  CHECK(parsed->front().blocks.size() == 1);
  CHECK(parsed->front().blocks[0].delay_since_last_sr == 6);
}

TEST_CASE("rtcp: every rejection reason") {
  RtcpReport rr;
  rr.ssrc = 5;
  rr.blocks.push_back(ReportBlock{6, 1, 2, 3, 4, 5, 6});
  Bytes good = write_rtcp_report(rr);
  REQUIRE(parse_rtcp(good));
  CHECK(parse_rtcp(ByteView(good).first(3)).error() == RtcpError::too_short);
  Bytes big(max_packet_size + 4);
  CHECK(parse_rtcp(big).error() == RtcpError::too_long);
  Bytes v1 = good;
  v1[0] = std::byte{0x41};
  CHECK(parse_rtcp(v1).error() == RtcpError::bad_version);
  CHECK(parse_rtcp(ByteView(good).first(good.size() - 4)).error() == RtcpError::bad_length);
  Bytes trailing = good;
  trailing.push_back(std::byte{0x80});  // a second packet without its 4-byte header
  CHECK(parse_rtcp(trailing).error() == RtcpError::bad_length);
  Bytes padded_first = good;
  padded_first[0] |= std::byte{0x20};
  Bytes bye = bytes({0x81, 203, 0, 1, 0, 0, 0, 5});
  padded_first.insert(padded_first.end(), bye.begin(), bye.end());
  CHECK(parse_rtcp(padded_first).error() == RtcpError::bad_padding);
  Bytes zero_pad = good;
  zero_pad[0] |= std::byte{0x20};
  zero_pad.back() = std::byte{0};
  CHECK(parse_rtcp(zero_pad).error() == RtcpError::bad_padding);
  Bytes short_rr = bytes({0x80, 201, 0, 0});  // an RR of only its common header
  CHECK(parse_rtcp(short_rr).error() == RtcpError::too_short);
  Bytes overcount = good;
  overcount[0] = std::byte{0x82};  // two blocks claimed, one present
  CHECK(parse_rtcp(overcount).error() == RtcpError::count_exceeds_length);
  CHECK(parse_rtcp(bye).error() == RtcpError::first_not_report);
  for (auto e : {RtcpError::too_short, RtcpError::too_long, RtcpError::bad_version, RtcpError::bad_length,
                 RtcpError::bad_padding, RtcpError::count_exceeds_length, RtcpError::first_not_report})
    CHECK_FALSE(to_string(e).empty());
}

TEST_CASE("telephone-event: parse and write, byte by byte (RFC 4733 2.3)") {
  Bytes wire = bytes({11, 0x8a, 0x03, 0x20});  // '#', E=1, volume 10, duration 800
  auto event = parse_telephone_event(wire);
  REQUIRE(event);
  CHECK(event->event == 11);
  CHECK(event->end);
  CHECK(event->volume == 10);
  CHECK(event->duration == 800);
  auto written = write_telephone_event(*event);
  REQUIRE(written);
  CHECK(*written == wire);
  Bytes reserved = bytes({1, 0x4a, 0, 1});  // R bit set: ignored
  CHECK(parse_telephone_event(reserved)->volume == 10);
  CHECK_FALSE(parse_telephone_event(reserved)->end);
}

TEST_CASE("telephone-event: every rejection reason") {
  CHECK(parse_telephone_event(bytes({1, 2, 3})).error() == EventError::wrong_size);
  CHECK(parse_telephone_event(bytes({1, 2, 3, 4, 5})).error() == EventError::wrong_size);
  CHECK(write_telephone_event(TelephoneEvent{1, false, 64, 0}).error() == EventError::bad_volume);
  CHECK_FALSE(to_string(EventError::wrong_size).empty());
  CHECK_FALSE(to_string(EventError::bad_volume).empty());
}

TEST_CASE("ntp: nanoseconds become 32.32 fixed point, middle 32 bits in 1/65536 s") {
  uint64_t ntp = ntp_from_ns(1'500'000'000);
  CHECK((ntp & 0xffffffffull) == 0x80000000ull);
  uint32_t a = ntp_middle32(ntp_from_ns(3'250'000'000));
  uint32_t b = ntp_middle32(ntp_from_ns(1'000'000'000));
  CHECK(a - b == 65536 * 2 + 16384);
}
