#include "media/rtp.hpp"

#include <algorithm>

namespace tsunagu::media {

namespace {

uint8_t byte_at(ByteView b, size_t i) { return std::to_integer<uint8_t>(b[i]); }

}  // namespace

bool is_rtcp(ByteView packet) {
  if (packet.size() < 2) return false;
  uint8_t type = byte_at(packet, 1);
  return type >= rtcp_sr && type <= rtcp_app;
}

std::string_view to_string(RtpError error) {
  switch (error) {
    case RtpError::too_short: return "RTP packet shorter than its 12-byte header";
    case RtpError::too_long: return "RTP packet longer than 1500 bytes";
    case RtpError::bad_version: return "RTP version is not 2";
    case RtpError::csrc_truncated: return "RTP CSRC list runs past the end";
    case RtpError::extension_truncated: return "RTP header extension runs past the end";
    case RtpError::bad_padding: return "RTP padding count is 0 or too large";
    case RtpError::rtcp_payload_type: return "payload type 72-76 is RTCP, not RTP";
  }
  return "unknown RTP error";
}

Expected<RtpPacket, RtpError> parse_rtp(ByteView packet) {
  if (packet.size() > max_packet_size) return Unexpected(RtpError::too_long);
  if (packet.size() < rtp_header_size) return Unexpected(RtpError::too_short);
  uint8_t first = byte_at(packet, 0);
  if ((first >> 6) != 2) return Unexpected(RtpError::bad_version);
  bool padding = (first & 0x20) != 0;
  bool extension = (first & 0x10) != 0;
  size_t csrc_count = first & 0x0f;
  uint8_t second = byte_at(packet, 1);

  RtpPacket out;
  out.header.marker = (second & 0x80) != 0;
  out.header.payload_type = second & 0x7f;
  if (out.header.payload_type >= 72 && out.header.payload_type <= 76) return Unexpected(RtpError::rtcp_payload_type);
  out.header.sequence = load_be16(packet.data() + 2);
  out.header.timestamp = load_be32(packet.data() + 4);
  out.header.ssrc = load_be32(packet.data() + 8);

  size_t offset = rtp_header_size;
  if (packet.size() - offset < 4 * csrc_count) return Unexpected(RtpError::csrc_truncated);
  for (size_t i = 0; i < csrc_count; ++i, offset += 4) out.header.csrcs.push_back(load_be32(packet.data() + offset));

  if (extension) {
    // 16-bit profile-defined value, 16-bit length in 32-bit words, then the words.
    if (packet.size() - offset < 4) return Unexpected(RtpError::extension_truncated);
    size_t words = load_be16(packet.data() + offset + 2);
    offset += 4;
    if (packet.size() - offset < 4 * words) return Unexpected(RtpError::extension_truncated);
    offset += 4 * words;
    out.had_extension = true;
  }

  size_t end = packet.size();
  if (padding) {
    // The last byte counts the padding, itself included; it cannot eat into the header.
    size_t pad = byte_at(packet, packet.size() - 1);
    if (pad == 0 || pad > end - offset) return Unexpected(RtpError::bad_padding);
    end -= pad;
  }
  out.payload = packet.subspan(offset, end - offset);
  return out;
}

Bytes write_rtp(const RtpHeader& header, ByteView payload) {
  size_t csrcs = std::min(header.csrcs.size(), max_csrc_count);
  Bytes out(rtp_header_size + 4 * csrcs + payload.size());
  out[0] = std::byte(0x80 | csrcs);
  out[1] = std::byte((header.marker ? 0x80 : 0) | (header.payload_type & 0x7f));
  store_be16(out.data() + 2, header.sequence);
  store_be32(out.data() + 4, header.timestamp);
  store_be32(out.data() + 8, header.ssrc);
  for (size_t i = 0; i < csrcs; ++i) store_be32(out.data() + 12 + 4 * i, header.csrcs[i]);
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<ptrdiff_t>(rtp_header_size + 4 * csrcs));
  return out;
}

std::string_view to_string(RtcpError error) {
  switch (error) {
    case RtcpError::too_short: return "RTCP packet shorter than its fixed part";
    case RtcpError::too_long: return "RTCP packet longer than 1500 bytes";
    case RtcpError::bad_version: return "RTCP version is not 2";
    case RtcpError::bad_length: return "RTCP length field runs past the end";
    case RtcpError::bad_padding: return "RTCP padding not on the last packet, or a bad count";
    case RtcpError::count_exceeds_length: return "RTCP report count exceeds the packet length";
    case RtcpError::first_not_report: return "RTCP compound does not start with SR or RR";
  }
  return "unknown RTCP error";
}

Expected<std::vector<RtcpReport>, RtcpError> parse_rtcp(ByteView packet) {
  if (packet.size() > max_packet_size) return Unexpected(RtcpError::too_long);
  if (packet.size() < 4) return Unexpected(RtcpError::too_short);
  std::vector<RtcpReport> reports;
  size_t offset = 0;
  bool first_packet = true;
  while (offset < packet.size()) {
    if (packet.size() - offset < 4) return Unexpected(RtcpError::bad_length);
    uint8_t first = byte_at(packet, offset);
    if ((first >> 6) != 2) return Unexpected(RtcpError::bad_version);
    uint8_t type = byte_at(packet, offset + 1);
    size_t count = first & 0x1f;
    size_t length = (static_cast<size_t>(load_be16(packet.data() + offset + 2)) + 1) * 4;
    if (length > packet.size() - offset) return Unexpected(RtcpError::bad_length);
    if (first_packet && type != rtcp_sr && type != rtcp_rr) return Unexpected(RtcpError::first_not_report);
    first_packet = false;
    ByteView body = packet.subspan(offset, length);
    offset += length;
    if (first & 0x20) {
      if (offset != packet.size()) return Unexpected(RtcpError::bad_padding);
      size_t pad = byte_at(body, body.size() - 1);
      if (pad == 0 || pad > body.size() - 4) return Unexpected(RtcpError::bad_padding);
      body = body.first(body.size() - pad);
    }
    if (type != rtcp_sr && type != rtcp_rr) continue;

    size_t fixed = type == rtcp_sr ? 28 : 8;
    if (body.size() < fixed) return Unexpected(RtcpError::too_short);
    if ((body.size() - fixed) / 24 < count) return Unexpected(RtcpError::count_exceeds_length);
    RtcpReport report;
    report.ssrc = load_be32(body.data() + 4);
    if (type == rtcp_sr) {
      report.sender = SenderInfo{load_be64(body.data() + 8), load_be32(body.data() + 16), load_be32(body.data() + 20),
                                 load_be32(body.data() + 24)};
    }
    for (size_t i = 0; i < count; ++i) {
      const std::byte* b = body.data() + fixed + 24 * i;
      ReportBlock block;
      block.ssrc = load_be32(b);
      block.fraction_lost = std::to_integer<uint8_t>(b[4]);
      uint32_t lost = load_be32(b + 4) & 0x00ffffff;
      block.cumulative_lost = (lost & 0x800000) ? static_cast<int32_t>(lost) - 0x1000000 : static_cast<int32_t>(lost);
      block.highest_sequence = load_be32(b + 8);
      block.jitter = load_be32(b + 12);
      block.last_sr = load_be32(b + 16);
      block.delay_since_last_sr = load_be32(b + 20);
      report.blocks.push_back(block);
    }
    reports.push_back(std::move(report));
  }
  return reports;
}

Bytes write_rtcp_report(const RtcpReport& report) {
  size_t count = std::min<size_t>(report.blocks.size(), 31);
  size_t fixed = report.sender ? 28 : 8;
  Bytes out(fixed + 24 * count);
  out[0] = std::byte(0x80 | count);
  out[1] = std::byte(report.sender ? rtcp_sr : rtcp_rr);
  store_be16(out.data() + 2, static_cast<uint16_t>(out.size() / 4 - 1));
  store_be32(out.data() + 4, report.ssrc);
  if (report.sender) {
    store_be64(out.data() + 8, report.sender->ntp_time);
    store_be32(out.data() + 16, report.sender->rtp_timestamp);
    store_be32(out.data() + 20, report.sender->packet_count);
    store_be32(out.data() + 24, report.sender->octet_count);
  }
  for (size_t i = 0; i < count; ++i) {
    const ReportBlock& block = report.blocks[i];
    std::byte* b = out.data() + fixed + 24 * i;
    store_be32(b, block.ssrc);
    // Cumulative loss is clamped to the 24-bit signed range (RFC 3550 6.4.1).
    int32_t lost = std::clamp<int32_t>(block.cumulative_lost, -0x800000, 0x7fffff);
    store_be32(b + 4, (static_cast<uint32_t>(block.fraction_lost) << 24) | (static_cast<uint32_t>(lost) & 0x00ffffff));
    store_be32(b + 8, block.highest_sequence);
    store_be32(b + 12, block.jitter);
    store_be32(b + 16, block.last_sr);
    store_be32(b + 20, block.delay_since_last_sr);
  }
  return out;
}

std::string_view to_string(EventError error) {
  switch (error) {
    case EventError::wrong_size: return "telephone-event payload is not 4 bytes";
    case EventError::bad_volume: return "telephone-event volume above 63";
  }
  return "unknown telephone-event error";
}

Expected<TelephoneEvent, EventError> parse_telephone_event(ByteView payload) {
  if (payload.size() != 4) return Unexpected(EventError::wrong_size);
  TelephoneEvent event;
  event.event = byte_at(payload, 0);
  event.end = (byte_at(payload, 1) & 0x80) != 0;
  event.volume = byte_at(payload, 1) & 0x3f;  // the R bit is ignored on receipt
  event.duration = load_be16(payload.data() + 2);
  return event;
}

Expected<Bytes, EventError> write_telephone_event(const TelephoneEvent& event) {
  if (event.volume > 63) return Unexpected(EventError::bad_volume);
  Bytes out(4);
  out[0] = std::byte(event.event);
  out[1] = std::byte((event.end ? 0x80 : 0) | event.volume);
  store_be16(out.data() + 2, event.duration);
  return out;
}

uint64_t ntp_from_ns(uint64_t now_ns) {
  // As if `now_ns` counted from the Unix epoch: NTP counts from 1900. The offset
  // also keeps the compact form away from 0, which in LSR means "no SR yet".
  uint64_t seconds = now_ns / 1'000'000'000 + 2'208'988'800ull;
  uint64_t fraction = ((now_ns % 1'000'000'000) << 32) / 1'000'000'000;
  return (seconds << 32) | fraction;
}

}  // namespace tsunagu::media
