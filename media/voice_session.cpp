#include "media/voice_session.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <optional>

#include "media/dtmf.hpp"
#include "media/jitter_buffer.hpp"
#include "media/opus_codec.hpp"
#include "media/receive_statistics.hpp"
#include "media/rtp.hpp"

namespace tsunagu::media {

namespace {

constexpr uint32_t frame_span = static_cast<uint32_t>(frame_samples);
constexpr uint32_t tag_opus = 0, tag_event = 1;
// A run of missing frames with nothing later in the buffer is concealed this
// long, then played as silence: the peer paused (hold, DTMF) or stopped.
constexpr uint32_t max_concealed_run = 5;

bool before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

class VoiceSessionImpl final : public VoiceSession {
 public:
  VoiceSessionImpl(VoiceConfig config, OpusVoiceEncoder encoder, OpusVoiceDecoder decoder, FrameJitterBuffer buffer)
      : config_(config), encoder_(std::move(encoder)), decoder_(std::move(decoder)), buffer_(std::move(buffer)) {
    // The shell draws the SSRC at random per call; the first sequence number
    // and timestamp are derived from it, so they are as unpredictable (RFC 3550 5.1).
    sequence_ = static_cast<uint16_t>((config.ssrc * 2654435761u) >> 16);
    timestamp_ = config.ssrc * 2246822519u;
    stats_.bitrate = encoder_.bitrate();
  }

  void capture(FrameView pcm, uint64_t now_ns) override {
    if (!report_due_ns_) report_due_ns_ = now_ns + config_.report_interval_ns;
    if (held_) {
      talkspurt_ = true;
    } else if (dtmf_.active()) {
      if (auto packet = dtmf_.next_frame()) send_event(*packet);
      talkspurt_ = true;
    } else {
      static const std::array<int16_t, frame_samples> silence{};
      auto encoded = encoder_.encode(muted_ ? FrameView(silence) : pcm);
      if (encoded) {
        send_rtp(config_.opus_payload_type, talkspurt_, timestamp_, *encoded);
        talkspurt_ = false;
      }
    }
    timestamp_ += frame_span;  // the RTP clock runs on while held or sending DTMF
    if (now_ns >= *report_due_ns_) {
      send_report(now_ns);
      // After a long stall, the next report is one interval from now, not a burst.
      *report_due_ns_ = std::max(*report_due_ns_ + config_.report_interval_ns, now_ns + config_.report_interval_ns / 2);
    }
  }

  bool send_digits(std::string_view digits) override { return dtmf_.queue(digits); }

  void received(ByteView packet, uint64_t now_ns) override {
    if (packet.size() > max_packet_size) return drop();
    if (is_rtcp(packet)) return received_rtcp(packet, now_ns);
    auto rtp = parse_rtp(packet);
    if (!rtp) return drop();
    const RtpHeader& header = rtp->header;
    if (!lock_ssrc(header.ssrc)) return drop();
    bool opus = header.payload_type == config_.opus_payload_type;
    bool event = header.payload_type == config_.event_payload_type;
    if (!opus && !event) return drop();
    std::optional<TelephoneEvent> telephone_event;
    if (opus && !is_opus_20ms_packet(rtp->payload)) return drop();
    if (event) {
      auto parsed = parse_telephone_event(rtp->payload);
      if (!parsed || !dtmf_digit_for(parsed->event)) return drop();  // only DTMF events are played
      telephone_event = *parsed;
    }
    // Off the stream's frame grid or far ahead of playout: noise, unless it keeps
    // coming (admit() then starts the buffer over); an event never restarts it.
    if (event ? !buffer_.fits(header.timestamp) : !buffer_.admit(header.timestamp)) return drop();
    switch (receive_stats_.on_packet(header.sequence)) {
      case ReceiveStatistics::Verdict::duplicate: ++stats_.duplicates; return;
      case ReceiveStatistics::Verdict::jumped: return drop();
      case ReceiveStatistics::Verdict::accepted: break;
    }
    stats_.lost = receive_stats_.lost();
    if (opus) {
      // A new sequence number with a timestamp already held is a duplicate all the same.
      auto put = buffer_.put(header.timestamp, header.sequence, rtp->payload, tag_opus);
      audio_received_ = true;
      if (put == FrameJitterBuffer::PutResult::duplicate) {
        ++stats_.duplicates;
        return;
      }
      if (put == FrameJitterBuffer::PutResult::off_grid || put == FrameJitterBuffer::PutResult::early) return drop();
      if (put == FrameJitterBuffer::PutResult::late) ++stats_.late;
      // Arrival on the RTP clock (48 per ms), via microseconds so that even a wall-clock now_ns cannot overflow.
      receive_stats_.on_transit(header.timestamp, static_cast<uint32_t>(now_ns / 1000 * 48 / 1000));
      stats_.jitter_ms = receive_stats_.jitter() / (sample_rate / 1000);
    } else {
      received_event(header, *telephone_event);
    }
    ++stats_.packets_received;
    stats_.bytes_received += rtp->payload.size();
    stats_.jitter_buffer_ms = buffer_.delay_ms();
  }

  void playout(FrameOut pcm, uint64_t) override {
    auto frame = buffer_.get();
    std::fill(pcm.begin(), pcm.end(), int16_t{0});
    // An event's tone is played from what its packets told us about the
    // timeline, whatever the buffer holds for that time (nothing, as Chromium
    // and we send no audio during an event, or audio a sender sent as well).
    const ReceivedEvent* tone = frame.status == FrameJitterBuffer::Status::not_started ? nullptr : tone_at(frame.timestamp);
    if (tone) {
      play_tone(*tone, pcm);
    } else {
      tone_playing_ = false;
      bool in_event = inside_event(frame.timestamp);
      switch (frame.status) {
        case FrameJitterBuffer::Status::not_started:
          break;
        case FrameJitterBuffer::Status::frame:
          if (frame.tag == tag_event) break;  // a slot that only keeps the timeline of an event heard before any audio
          if (decoder_.decode(frame.payload, pcm)) {
            concealed_run_ = 0;
          } else {
            conceal(pcm);  // cannot happen for a payload we checked; concealed all the same
          }
          break;
        case FrameJitterBuffer::Status::missing:
        case FrameJitterBuffer::Status::insertion:
          if (in_event) break;  // the gap after a DTMF event: silence, nothing lost
          if (frame.status == FrameJitterBuffer::Status::missing && config_.fec && frame.next_payload &&
              opus_packet_has_fec(*frame.next_payload) && decoder_.decode_fec(*frame.next_payload, pcm)) {
            ++stats_.fec_recovered;
            concealed_run_ = 0;
          } else if (buffer_.held() > 0 || concealed_run_ < max_concealed_run) {
            conceal(pcm);
          }
          break;
      }
    }
    stats_.jitter_buffer_ms = buffer_.delay_ms();
  }

  std::vector<Bytes> take_packets() override { return std::exchange(outgoing_, {}); }
  std::string take_digits() override { return std::exchange(new_digits_, {}); }
  void set_muted(bool muted) override { muted_ = muted; }
  void set_held(bool held) override { held_ = held; }
  bool sending_digits() const override { return dtmf_.active(); }
  const VoiceStats& stats() const override { return stats_; }

 private:
  // A telephone-event as its packets have told it so far.
  struct ReceivedEvent {
    uint32_t start;
    uint8_t event;
    uint32_t duration;
    bool ended;
    uint32_t slots_put = 0;
  };

  void drop() { ++stats_.dropped; }

  bool lock_ssrc(uint32_t ssrc) {
    if (!peer_ssrc_) peer_ssrc_ = ssrc;
    return *peer_ssrc_ == ssrc;
  }

  void send_rtp(uint8_t payload_type, bool marker, uint32_t timestamp, ByteView payload) {
    RtpHeader header;
    header.marker = marker;
    header.payload_type = payload_type;
    header.sequence = sequence_++;
    header.timestamp = timestamp;
    header.ssrc = config_.ssrc;
    outgoing_.push_back(write_rtp(header, payload));
    ++stats_.packets_sent;
    stats_.bytes_sent += payload.size();
    sent_since_report_ = true;
  }

  void send_event(const EventPacket& packet) {
    auto payload = write_telephone_event(packet.event);
    if (!payload) return;
    send_rtp(config_.event_payload_type, packet.marker, timestamp_ - packet.timestamp_offset * frame_span, *payload);
  }

  // One SR (we sent RTP since the last report) or RR, with a block about the
  // peer once we have heard it. Sent while held too: the peer keeps its RTT
  // and loss figures and learns we are still there.
  void send_report(uint64_t now_ns) {
    RtcpReport report;
    report.ssrc = config_.ssrc;
    uint64_t ntp = ntp_from_ns(now_ns);
    if (sent_since_report_) {
      report.sender = SenderInfo{ntp, timestamp_, static_cast<uint32_t>(stats_.packets_sent),
                                 static_cast<uint32_t>(stats_.bytes_sent)};
    }
    sent_since_report_ = false;
    if (peer_ssrc_ && receive_stats_.started()) {
      ReportBlock block;
      block.ssrc = *peer_ssrc_;
      block.fraction_lost = receive_stats_.take_fraction_lost();
      block.cumulative_lost = static_cast<int32_t>(std::clamp<int64_t>(receive_stats_.cumulative_lost(), -0x800000, 0x7fffff));
      block.highest_sequence = receive_stats_.extended_max();
      block.jitter = static_cast<uint32_t>(receive_stats_.jitter());
      if (last_sr_) {
        block.last_sr = *last_sr_;
        block.delay_since_last_sr = static_cast<uint32_t>(((now_ns - last_sr_arrival_ns_) << 16) / 1'000'000'000);
      }
      report.blocks.push_back(block);
    }
    outgoing_.push_back(write_rtcp_report(report));
    ++stats_.reports_sent;
  }

  void received_rtcp(ByteView packet, uint64_t now_ns) {
    auto reports = parse_rtcp(packet);
    if (!reports || reports->empty()) return drop();
    if (!lock_ssrc(reports->front().ssrc)) return drop();
    ++stats_.reports_received;
    for (const RtcpReport& report : *reports) {
      if (report.ssrc != *peer_ssrc_) continue;
      if (report.sender) {
        last_sr_ = ntp_middle32(report.sender->ntp_time);
        last_sr_arrival_ns_ = now_ns;
      }
      for (const ReportBlock& block : report.blocks) {
        if (block.ssrc != config_.ssrc) continue;
        stats_.peer_loss_percent = block.fraction_lost * 100.0 / 256.0;
        // More loss reported, stronger in-band FEC (Opus spends bits on it only when this is above 0).
        if (encoder_.set_packet_loss_percent(static_cast<int>(std::ceil(stats_.peer_loss_percent)))) {
          stats_.bitrate = encoder_.bitrate();
        }
        if (block.last_sr != 0) {
          // RFC 3550 6.4.1: RTT = A - LSR - DLSR, all in 1/65536 s of our own clock.
          uint32_t arrival = ntp_middle32(ntp_from_ns(now_ns));
          uint32_t rtt = arrival - block.last_sr - block.delay_since_last_sr;
          if (static_cast<int32_t>(rtt) >= 0) stats_.rtt_ms = rtt * 1000.0 / 65536.0;
        }
      }
    }
  }

  void received_event(const RtpHeader& header, const TelephoneEvent& event) {
    bool known = std::find(recent_event_starts_.begin(), recent_event_starts_.end(), header.timestamp) !=
                 recent_event_starts_.end();
    if (!known) {
      // A new event (its first packet may have been lost): its digit counts once.
      char digit = *dtmf_digit_for(event.event);
      stats_.digits_received += digit;
      new_digits_ += digit;
      recent_event_starts_.push_back(header.timestamp);
      if (recent_event_starts_.size() > 16) recent_event_starts_.pop_front();
      events_.push_back(ReceivedEvent{header.timestamp, event.event, 0, false});
      if (events_.size() > 16) events_.pop_front();
    }
    for (auto& received : events_) {
      if (received.start != header.timestamp) continue;
      received.duration = std::max<uint32_t>(received.duration, event.duration);
      received.ended = received.ended || event.end;
      // Before any audio has come the jitter buffer has no timeline, and the
      // tone is played from the buffer's: the event's 20 ms slots start and
      // carry it (a sender that dials from silence sends no audio at all).
      if (audio_received_) continue;
      const std::byte code{event.event};
      for (; received.slots_put * frame_span < received.duration; ++received.slots_put) {
        buffer_.put(received.start + received.slots_put * frame_span, header.sequence, ByteView(&code, 1), tag_event);
      }
    }
  }

  // The event sounding at `timestamp`, if any. An event not yet ended is taken
  // to last one frame beyond the duration heard so far: a sender reports each
  // 20 ms only once it has elapsed (Chromium: the packet saying 960 leaves a
  // frame after the event began), so without this every frame of the tone
  // would be known only as its playout time passes, and with a shallow buffer
  // none of it would sound. An event cut short costs at most that one frame.
  const ReceivedEvent* tone_at(uint32_t timestamp) const {
    for (const auto& received : events_) {
      uint32_t end = received.start + received.duration + (received.ended ? 0 : frame_span);
      if (!before(timestamp, received.start) && before(timestamp, end)) return &received;
    }
    return nullptr;
  }

  // Within an event or the gap after it, missing audio is expected: the sender sent none.
  bool inside_event(uint32_t timestamp) const {
    for (const auto& received : events_) {
      uint32_t end = received.start + received.duration + dtmf_gap_frames * frame_span;
      if (!before(timestamp, received.start) && before(timestamp, end)) return true;
    }
    return false;
  }

  void play_tone(const ReceivedEvent& event, FrameOut pcm) {
    // The same event continues its tone's phase; a new one starts its own.
    if (!tone_playing_ || event.start != tone_start_) tone_.start(event.event);
    tone_.render(pcm);
    tone_playing_ = true;
    tone_start_ = event.start;
    concealed_run_ = max_concealed_run;  // after the tone, missing audio is the gap, not loss
  }

  void conceal(FrameOut pcm) {
    if (decoder_.conceal(pcm)) {
      ++stats_.concealed;
      ++concealed_run_;
    }
  }

  VoiceConfig config_;
  OpusVoiceEncoder encoder_;
  OpusVoiceDecoder decoder_;
  FrameJitterBuffer buffer_;
  DtmfSender dtmf_;
  DtmfToneGenerator tone_;
  ReceiveStatistics receive_stats_;
  VoiceStats stats_;

  uint16_t sequence_ = 0;
  uint32_t timestamp_ = 0;
  bool talkspurt_ = true;  // the next Opus packet starts a talkspurt: marker set
  bool muted_ = false, held_ = false;
  bool sent_since_report_ = false;
  std::optional<uint64_t> report_due_ns_;
  std::vector<Bytes> outgoing_;

  std::optional<uint32_t> peer_ssrc_;
  std::optional<uint32_t> last_sr_;
  uint64_t last_sr_arrival_ns_ = 0;
  uint32_t concealed_run_ = max_concealed_run;  // nothing to conceal before the first frame
  std::deque<uint32_t> recent_event_starts_;
  std::deque<ReceivedEvent> events_;
  std::string new_digits_;
  bool tone_playing_ = false;
  bool audio_received_ = false;  // an Opus packet has been put in the buffer
  uint32_t tone_start_ = 0;  // the event whose tone is playing
};

}  // namespace

Expected<std::unique_ptr<VoiceSession>, std::string> VoiceSession::create(VoiceConfig config) {
  if (config.opus_payload_type > 127 || config.event_payload_type > 127 ||
      config.opus_payload_type == config.event_payload_type)
    return Unexpected(std::string("payload types must be distinct and 0-127"));
  if (config.report_interval_ns == 0) return Unexpected(std::string("report interval must be above 0"));
  if (config.complexity < 0 || config.complexity > 10) return Unexpected(std::string("Opus complexity must be 0-10"));
  auto encoder = OpusVoiceEncoder::create(config.bitrate, config.fec, config.complexity);
  if (!encoder) return Unexpected(encoder.error());
  auto decoder = OpusVoiceDecoder::create();
  if (!decoder) return Unexpected(decoder.error());
  auto buffer = FrameJitterBuffer::create(config.max_jitter_ms);
  if (!buffer) return Unexpected(buffer.error());
  return std::unique_ptr<VoiceSession>(
      std::make_unique<VoiceSessionImpl>(config, std::move(*encoder), std::move(*decoder), std::move(*buffer)));
}

std::string voice_stats_json(const VoiceStats& s) {
  std::string digits;
  for (char c : s.digits_received) {
    // Only 0-9 * # A-D are ever collected; nothing here needs escaping.
    digits += c;
  }
  char buffer[768];
  std::snprintf(buffer, sizeof buffer,
                "{\"packets_sent\":%llu,\"packets_received\":%llu,\"bytes_sent\":%llu,\"bytes_received\":%llu,"
                "\"reports_sent\":%llu,\"reports_received\":%llu,\"lost\":%llu,\"concealed\":%llu,"
                "\"fec_recovered\":%llu,\"late\":%llu,\"duplicates\":%llu,\"dropped\":%llu,\"jitter_ms\":%.3f,"
                "\"rtt_ms\":%.3f,\"peer_loss_percent\":%.2f,\"jitter_buffer_ms\":%u,\"bitrate\":%d,",
                static_cast<unsigned long long>(s.packets_sent), static_cast<unsigned long long>(s.packets_received),
                static_cast<unsigned long long>(s.bytes_sent), static_cast<unsigned long long>(s.bytes_received),
                static_cast<unsigned long long>(s.reports_sent), static_cast<unsigned long long>(s.reports_received),
                static_cast<unsigned long long>(s.lost), static_cast<unsigned long long>(s.concealed),
                static_cast<unsigned long long>(s.fec_recovered), static_cast<unsigned long long>(s.late),
                static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.dropped), s.jitter_ms,
                s.rtt_ms, s.peer_loss_percent, s.jitter_buffer_ms, s.bitrate);
  return std::string(buffer) + "\"digits_received\":\"" + digits + "\"}";
}

}  // namespace tsunagu::media
