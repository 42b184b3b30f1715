// RTP (RFC 3550 5.1) and RTCP sender/receiver reports (RFC 3550 6.4) on byte
// buffers, and the RFC 4733 telephone-event payload. Parsers only read inside
// the view they are given and refuse anything longer than max_packet_size;
// a parsed RtpPacket's payload points into the input.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::media {

inline constexpr size_t max_packet_size = 1500;
inline constexpr size_t rtp_header_size = 12;
inline constexpr size_t max_csrc_count = 15;

// RFC 5761 4: on a shared port, a second byte of 200-204 (SR, RR, SDES, BYE,
// APP) is RTCP; RTP payload types 72-76 are never used so the two cannot clash.
bool is_rtcp(ByteView packet);

enum class RtpError {
  too_short,            // fewer than 12 bytes
  too_long,             // more than max_packet_size
  bad_version,          // version is not 2
  csrc_truncated,       // the CSRC list runs past the end
  extension_truncated,  // the header extension (or its length field) runs past the end
  bad_padding,          // padding count 0 or larger than what follows the header
  rtcp_payload_type,    // payload type 72-76: an RTCP packet (RFC 5761) given to the RTP parser
};
std::string_view to_string(RtpError error);

struct RtpHeader {
  bool marker = false;
  uint8_t payload_type = 0;  // 0-127
  uint16_t sequence = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::vector<uint32_t> csrcs;  // at most max_csrc_count
};

struct RtpPacket {
  RtpHeader header;
  bool had_extension = false;  // skipped: we define no extensions
  ByteView payload;            // without padding; points into the parsed input
};

Expected<RtpPacket, RtpError> parse_rtp(ByteView packet);
// No padding and no extension. The caller keeps header + payload within max_packet_size.
Bytes write_rtp(const RtpHeader& header, ByteView payload);

// RTCP.
enum class RtcpError {
  too_short,           // not even one 4-byte common header, or a report shorter than its fixed part
  too_long,            // more than max_packet_size
  bad_version,         // a packet of the compound is not version 2
  bad_length,          // a length field runs past the end
  bad_padding,         // padding on a packet that is not the last, or a bad padding count
  count_exceeds_length,  // more report blocks than the packet's length holds
  first_not_report,    // a compound must start with SR or RR (RFC 3550 A.2)
};
std::string_view to_string(RtcpError error);

inline constexpr uint8_t rtcp_sr = 200, rtcp_rr = 201, rtcp_sdes = 202, rtcp_bye = 203, rtcp_app = 204;

struct ReportBlock {
  uint32_t ssrc = 0;             // the source this block is about
  uint8_t fraction_lost = 0;     // of the last interval, in 1/256
  int32_t cumulative_lost = 0;   // 24-bit signed on the wire
  uint32_t highest_sequence = 0;  // extended (cycles << 16 | seq)
  uint32_t jitter = 0;           // in timestamp units
  uint32_t last_sr = 0;          // middle 32 bits of the NTP time of the last SR received
  uint32_t delay_since_last_sr = 0;  // in 1/65536 s
};

struct SenderInfo {
  uint64_t ntp_time = 0;  // 32.32 fixed point seconds
  uint32_t rtp_timestamp = 0;
  uint32_t packet_count = 0;
  uint32_t octet_count = 0;
};

// An SR (sender present) or an RR. At most 31 blocks (5-bit count).
struct RtcpReport {
  uint32_t ssrc = 0;
  std::optional<SenderInfo> sender;
  std::vector<ReportBlock> blocks;
};

// The SRs and RRs of a compound packet; SDES, BYE, APP and unknown types are
// checked for a consistent length and skipped.
Expected<std::vector<RtcpReport>, RtcpError> parse_rtcp(ByteView packet);
Bytes write_rtcp_report(const RtcpReport& report);

// RFC 4733 2.3: one telephone event (4 bytes).
struct TelephoneEvent {
  uint8_t event = 0;
  bool end = false;
  uint8_t volume = 0;  // 0-63: -dBm0
  uint16_t duration = 0;  // in timestamp units
};
enum class EventError {
  wrong_size,  // not exactly 4 bytes (we send no redundant events and accept none)
  bad_volume,  // volume above 63 cannot be written; parse never returns it
};
std::string_view to_string(EventError error);
Expected<TelephoneEvent, EventError> parse_telephone_event(ByteView payload);
Expected<Bytes, EventError> write_telephone_event(const TelephoneEvent& event);

// NTP helpers for RTCP: times are nanoseconds on the caller's clock.
uint64_t ntp_from_ns(uint64_t now_ns);
inline uint32_t ntp_middle32(uint64_t ntp) { return static_cast<uint32_t>(ntp >> 16); }

}  // namespace tsunagu::media
