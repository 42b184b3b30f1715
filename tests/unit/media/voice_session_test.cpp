// Two VoiceSessions joined in memory by a simulated network: every 20 ms A and
// B capture, the network delivers what is due (after a delay, maybe lost,
// duplicated or reordered, with a seeded generator), and both play out.
#include "media/voice_session.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <time.h>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "media/dtmf.hpp"
#include "media/opus_codec.hpp"
#include "media/rtp.hpp"
#include "signal.hpp"

using namespace tsunagu;
using namespace tsunagu::media;

namespace {

using Frame = std::array<int16_t, frame_samples>;

struct NetworkConditions {
  double loss = 0;       // fraction of packets dropped
  double duplicate = 0;  // fraction of packets delivered twice
  double reorder = 0;    // fraction held back by 30 ms (so later ones overtake them)
  uint64_t delay_ns = 10'000'000;
  uint64_t jitter_ns = 0;  // plus a uniform random 0..jitter_ns
  bool lose_rtcp = false;  // loss applies to RTP only unless set
};

// One direction of the network: packets due at a time, in the order they are due.
class Direction {
 public:
  Direction(NetworkConditions conditions, uint32_t seed) : conditions_(conditions), random_(seed) {}

  void send(std::vector<Bytes> packets, uint64_t now_ns) {
    for (auto& p : packets) {
      std::uniform_real_distribution<double> u(0, 1);
      bool rtcp = is_rtcp(p);
      if ((!rtcp || conditions_.lose_rtcp) && u(random_) < conditions_.loss) {
        ++lost_;
        continue;
      }
      uint64_t due = now_ns + conditions_.delay_ns + (u(random_) < conditions_.reorder ? 30'000'000 : 0) +
                     static_cast<uint64_t>(u(random_) * static_cast<double>(conditions_.jitter_ns));
      if (u(random_) < conditions_.duplicate) in_flight_.emplace(std::pair{due + 5'000'000, counter_++}, p);
      in_flight_.emplace(std::pair{due, counter_++}, std::move(p));
    }
  }
  // What is due by now, each with its own arrival time (playout still runs on the 20 ms ticks).
  void deliver(VoiceSession& to, uint64_t now_ns) {
    while (!in_flight_.empty() && in_flight_.begin()->first.first <= now_ns) {
      to.received(in_flight_.begin()->second, in_flight_.begin()->first.first);
      in_flight_.erase(in_flight_.begin());
    }
  }
  uint64_t lost() const { return lost_; }

 private:
  NetworkConditions conditions_;
  std::mt19937 random_;
  std::map<std::pair<uint64_t, uint64_t>, Bytes> in_flight_;
  uint64_t counter_ = 0;
  uint64_t lost_ = 0;
};

std::unique_ptr<VoiceSession> session(uint32_t ssrc) {
  VoiceConfig config;
  config.ssrc = ssrc;
  auto created = VoiceSession::create(config);
  REQUIRE(created);
  return std::move(*created);
}

Frame signal_frame(size_t index) {
  Frame f{};
  for (size_t i = 0; i < frame_samples; ++i) f[i] = media_test::test_signal(index * frame_samples + i);
  return f;
}

// A call: A speaks the test signal, B is silent; everything B plays is kept.
struct Call {
  std::unique_ptr<VoiceSession> a = session(0x0a0a0a0a), b = session(0x0b0b0b0b);
  Direction a_to_b, b_to_a;
  std::vector<int16_t> sent, b_heard;
  uint64_t now_ns = 1'000'000'000'000;  // any origin: the sessions only see differences
  size_t frame_index = 0;

  Call(NetworkConditions forward, NetworkConditions back = {}) : a_to_b(forward, 1234), b_to_a(back, 5678) {}

  void run(size_t frames, bool a_speaks = true) {
    static const Frame silence{};
    for (size_t k = 0; k < frames; ++k, ++frame_index, now_ns += frame_ns) {
      Frame f = a_speaks ? signal_frame(frame_index) : silence;
      sent.insert(sent.end(), f.begin(), f.end());
      a->capture(f, now_ns);
      b->capture(silence, now_ns);
      a_to_b.send(a->take_packets(), now_ns);
      b_to_a.send(b->take_packets(), now_ns);
      a_to_b.deliver(*b, now_ns);
      b_to_a.deliver(*a, now_ns);
      Frame out{}, a_out{};
      b->playout(out, now_ns);
      a->playout(a_out, now_ns);
      b_heard.insert(b_heard.end(), out.begin(), out.end());
    }
  }
  // Let what is in flight arrive without sending more.
  void drain() {
    for (int k = 0; k < 10; ++k, now_ns += frame_ns) {
      a_to_b.deliver(*b, now_ns);
      b_to_a.deliver(*a, now_ns);
    }
  }
};

double rms(const std::vector<int16_t>& x, size_t from, size_t count) {
  double sum = 0;
  for (size_t i = from; i < from + count && i < x.size(); ++i) sum += static_cast<double>(x[i]) * x[i];
  return std::sqrt(sum / static_cast<double>(count));
}

// The end-to-end delay: where B's output matches A's input best (searched in 1 ms steps, then refined).
media_test::BestLag end_to_end(const std::vector<int16_t>& sent, const std::vector<int16_t>& heard, size_t from,
                               size_t count) {
  media_test::BestLag coarse;
  for (size_t lag = 0; lag <= 48 * 300; lag += 48) {
    double c = media_test::correlation(sent, heard, lag, from, count);
    if (c > coarse.correlation) coarse = {c, lag};
  }
  media_test::BestLag best = coarse;
  for (size_t lag = coarse.lag >= 48 ? coarse.lag - 48 : 0; lag <= coarse.lag + 48; ++lag) {
    double c = media_test::correlation(sent, heard, lag, from, count);
    if (c > best.correlation) best = {c, lag};
  }
  return best;
}

// Digits read back from audio by Goertzel on 20 ms blocks: a block is a digit
// when one row and one column frequency stand far above the others.
std::string decode_dtmf(const std::vector<int16_t>& audio, size_t* tone_blocks = nullptr) {
  static constexpr double rows[4] = {697, 770, 852, 941}, columns[4] = {1209, 1336, 1477, 1633};
  static constexpr char keys[4][4] = {{'1', '2', '3', 'A'}, {'4', '5', '6', 'B'}, {'7', '8', '9', 'C'}, {'*', '0', '#', 'D'}};
  std::string digits;
  char previous = 0;
  for (size_t from = 0; from + frame_samples <= audio.size(); from += frame_samples) {
    auto strongest = [&](const double (&set)[4], double& second) {
      int best = 0;
      double powers[4];
      for (int i = 0; i < 4; ++i) {
        powers[i] = media_test::goertzel(audio, from, frame_samples, set[i]);
        if (powers[i] > powers[best]) best = i;
      }
      second = 0;
      for (int i = 0; i < 4; ++i)
        if (i != best) second = std::max(second, powers[i]);
      return std::pair{best, powers[best]};
    };
    double row_second = 0, column_second = 0;
    auto [row, row_power] = strongest(rows, row_second);
    auto [column, column_power] = strongest(columns, column_second);
    // A tone at amplitude ~10000 gives power ~(10000/2)^2 = 2.5e7 per 20 ms block. A 20 ms
    // block resolves 50 Hz, so a row tone leaks about 1/20 of its power into the next row's bin.
    bool tone = row_power > 5e6 && column_power > 5e6 && row_power > 5 * row_second && column_power > 5 * column_second;
    char key = tone ? keys[row][column] : 0;
    if (key && tone_blocks) ++*tone_blocks;
    if (key && key != previous) digits += key;
    previous = key;
  }
  return digits;
}

}  // namespace

TEST_CASE("voice session: a clean path carries the signal; output correlates with input after the delay") {
  Call call({});
  call.run(250);  // 5 s
  call.drain();
  const VoiceStats& b = call.b->stats();
  const VoiceStats& a = call.a->stats();
  CHECK(a.packets_sent == 250);
  CHECK(b.packets_received == 250);
  CHECK(b.lost == 0);
  CHECK(b.dropped == 0);
  CHECK(b.duplicates == 0);
  CHECK(b.fec_recovered == 0);
  CHECK(b.late == 0);
  CHECK(b.concealed <= 2);  // at most the buffer settling its delay once
  CHECK(a.reports_sent >= 4);
  CHECK(b.reports_received >= 4);
  CHECK(b.bytes_received == a.bytes_sent);
  CHECK(b.jitter_ms < 0.1);
  CHECK(a.bitrate == 32000);
  // From 3 s on: speexdsp starts with no extra delay and settles on its margin within the first seconds.
  auto best = end_to_end(call.sent, call.b_heard, 48000 * 3, 96000);
  MESSAGE("clean path: correlation " << best.correlation << " at " << best.lag / 48.0 << " ms; jitter buffer "
                                     << b.jitter_buffer_ms << " ms; concealed " << b.concealed);
  CHECK(best.correlation > 0.93);
  CHECK(best.lag > 20 * 48);  // a packet arrives a 20 ms tick after it was captured, then waits in the buffer
  CHECK(best.lag < 150 * 48);
  // A broken pipeline (silence, or garbage) fails this: the input against unrelated audio does not correlate.
  CHECK(media_test::correlation(call.sent, call.b_heard, best.lag + 4801, 48000 * 3, 96000) < 0.5);
  CHECK(voice_stats_json(b).find("\"packets_received\":250") != std::string::npos);
}

TEST_CASE("voice session: 5 % random loss is recovered by FEC from the next packet or concealed") {
  Call call({.loss = 0.05});
  call.run(1000);  // 20 s
  const VoiceStats& b = call.b->stats();
  const VoiceStats& a = call.a->stats();
  MESSAGE("5% loss: lost " << b.lost << ", FEC recovered " << b.fec_recovered << ", concealed " << b.concealed
                           << ", peer loss seen by A " << a.peer_loss_percent << " %");
  // A loss at the very end is not known yet: no later packet has shown the gap.
  CHECK(b.lost <= call.a_to_b.lost());
  CHECK(b.lost + 1 >= call.a_to_b.lost());
  CHECK(b.lost > 20);
  CHECK(b.fec_recovered > 0);
  CHECK(b.concealed > 0);
  CHECK(b.fec_recovered + b.concealed >= b.lost);
  CHECK(a.peer_loss_percent > 1);
  CHECK(a.peer_loss_percent < 15);
  auto best = end_to_end(call.sent, call.b_heard, 48000 * 5, 48000 * 10);
  MESSAGE("5% loss: correlation " << best.correlation);
  CHECK(best.correlation > 0.75);
}

TEST_CASE("voice session: 30 +- 10 ms of jitter with 5 % loss (the lab's netem link) still sounds like the input") {
  Call call({.loss = 0.05, .delay_ns = 20'000'000, .jitter_ns = 20'000'000});
  call.run(1000);  // 20 s
  const VoiceStats& b = call.b->stats();
  MESSAGE("jitter + loss: lost " << b.lost << ", FEC " << b.fec_recovered << ", concealed " << b.concealed << ", late "
                                 << b.late << ", jitter " << b.jitter_ms << " ms, buffer " << b.jitter_buffer_ms << " ms");
  CHECK(b.fec_recovered > 0);
  CHECK(b.jitter_ms > 2);
  CHECK(b.jitter_buffer_ms <= 300);
  auto best = end_to_end(call.sent, call.b_heard, 48000 * 10, 48000 * 8);
  MESSAGE("jitter + loss: correlation " << best.correlation << " at " << best.lag / 48.0 << " ms");
  CHECK(best.correlation > 0.85);
}

TEST_CASE("voice session: reordered and duplicated packets are played once each, in order") {
  Call call({.duplicate = 0.1, .reorder = 0.1});
  call.run(500);
  call.drain();
  const VoiceStats& b = call.b->stats();
  MESSAGE("reorder/duplicate: duplicates " << b.duplicates << ", late " << b.late << ", concealed " << b.concealed
                                           << ", jitter " << b.jitter_ms << " ms, buffer " << b.jitter_buffer_ms << " ms");
  CHECK(b.duplicates > 20);
  CHECK(b.packets_received == 500);  // each counted once
  CHECK(b.lost == 0);
  CHECK(b.jitter_ms > 1);
  auto best = end_to_end(call.sent, call.b_heard, 48000 * 4, 48000 * 5);
  MESSAGE("reorder/duplicate: correlation " << best.correlation);
  CHECK(best.correlation > 0.8);
}

TEST_CASE("voice session: wrong payload type, foreign SSRC and malformed packets are dropped and counted") {
  Call call({});
  call.run(50);
  uint64_t received = call.b->stats().packets_received;
  RtpHeader header;
  header.payload_type = 111;
  header.ssrc = 0x0a0a0a0a;
  header.sequence = 1;
  header.timestamp = 0;
  Bytes opus_like{std::byte{0x78}, std::byte{0x01}, std::byte{0x02}};
  header.payload_type = 96;  // not ours
  call.b->received(write_rtp(header, opus_like), call.now_ns);
  header.payload_type = 111;
  header.ssrc = 0xdeadbeef;  // someone else
  call.b->received(write_rtp(header, opus_like), call.now_ns);
  Bytes garbage{std::byte{0x12}, std::byte{0x34}};
  call.b->received(garbage, call.now_ns);
  Bytes too_big(1600, std::byte{0x80});
  call.b->received(too_big, call.now_ns);
  header.ssrc = 0x0a0a0a0a;
  call.b->received(write_rtp(header, garbage), call.now_ns);  // not an Opus packet of 20 ms
  header.payload_type = 101;
  call.b->received(write_rtp(header, Bytes{std::byte{20}, std::byte{10}, std::byte{0}, std::byte{0}}),
                   call.now_ns);  // event 20 is no DTMF digit
  RtcpReport foreign;
  foreign.ssrc = 0xdeadbeef;
  call.b->received(write_rtcp_report(foreign), call.now_ns);
  // A real Opus packet at a timestamp that is not a whole number of frames from the stream's.
  Bytes opus_packet;
  {
    Call other({});
    other.a->capture(signal_frame(0), other.now_ns);
    auto packets = other.a->take_packets();
    auto parsed = parse_rtp(packets.front());
    REQUIRE(parsed);
    opus_packet.assign(parsed->payload.begin(), parsed->payload.end());
  }
  header.payload_type = 111;
  // The sequence number A sends next (its first is derived from its SSRC), so only the timestamp is wrong.
  header.sequence = static_cast<uint16_t>(((0x0a0a0a0au * 2654435761u) >> 16) + call.a->stats().packets_sent);
  header.timestamp = 0x0a0a0a0au * 2246822519u + 60 * 960 + 17;
  call.b->received(write_rtp(header, opus_packet), call.now_ns);
  // And one a minute in the future: refused, so that B does not skip audio to reach it.
  header.timestamp = 0x0a0a0a0au * 2246822519u + 3000 * 960;
  call.b->received(write_rtp(header, opus_packet), call.now_ns);
  CHECK(call.b->stats().dropped == 9);
  CHECK(call.b->stats().packets_received == received);
  call.run(50);
  CHECK(call.b->stats().packets_received == received + 50);  // still locked on A
  CHECK(call.b->stats().lost == 0);
}

TEST_CASE("voice session: DTMF 4106# sent by A arrives at B as exactly those digits, played as tones") {
  Call call({.delay_ns = 30'000'000});
  call.run(25);
  CHECK_FALSE(call.a->send_digits("41x"));
  CHECK_FALSE(call.a->sending_digits());
  REQUIRE(call.a->send_digits("4106#"));
  CHECK(call.a->sending_digits());
  uint64_t sent_before = call.a->stats().packets_sent;
  for (int i = 0; i < 60 && call.a->sending_digits(); ++i) call.run(1);
  CHECK_FALSE(call.a->sending_digits());
  CHECK(call.a->stats().packets_sent - sent_before == 5 * 7);  // 7 event packets per digit, no Opus
  call.run(25);
  CHECK(call.b->take_digits() == "4106#");
  CHECK(call.b->take_digits().empty());
  CHECK(call.b->stats().digits_received == "4106#");
  std::string heard = decode_dtmf(call.b_heard);
  MESSAGE("digits decoded from B's audio by Goertzel: " << heard);
  CHECK(heard == "4106#");
  CHECK(call.b->stats().concealed <= 2);  // the event frames and gaps are not losses

  // The retransmitted end packets do not add digits, even when duplicated on the way.
  Call dup({.duplicate = 0.5});
  dup.run(10);
  REQUIRE(dup.a->send_digits("55"));
  dup.run(40);
  CHECK(dup.b->take_digits() == "55");
  CHECK(decode_dtmf(dup.b_heard) == "55");

  // For an independent check of the audio, write it out when asked (multimon-ng -a DTMF in the lab suite).
  if (const char* path = std::getenv("MEDIA_DTMF_RAW")) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(call.b_heard.data()),
              static_cast<std::streamsize>(call.b_heard.size() * sizeof(int16_t)));
  }
}

// What Chromium (WebRTC's RTPSenderAudio) puts on the wire for an insertDTMF
// digit of 100 ms (webrtc/modules/rtp_rtcp/source/rtp_sender_audio.cc): nothing in the event's first
// 20 ms frame (it never sends a duration of 0), then one packet per frame with
// the duration elapsed so far, all stamped with the event's start and the first
// with the marker; the packet that reaches 100 ms has the E bit and goes out 3
// times at once. So each 20 ms of the event is announced a frame after its own
// audio would have been sent. No Opus for those 6 frames (Chromium sends none),
// unless `audio_during_events` (RFC 4733 allows both).
class ChromiumLikeSender {
 public:
  explicit ChromiumLikeSender(bool audio_during_events) : audio_during_events_(audio_during_events) {
    auto created = OpusVoiceEncoder::create(32000, true, 6);
    REQUIRE(created);
    encoder_ = std::move(*created);
  }
  void press(char digit) { pending_ += digit; }
  bool busy() const { return !pending_.empty() || event_frame_ >= 0; }

  std::vector<Bytes> frame(FrameView pcm) {
    std::vector<Bytes> packets;
    if (event_frame_ < 0 && !pending_.empty() && frames_since_event_ >= 6) {
      event_ = *dtmf_event_for(pending_.front());
      pending_.erase(0, 1);
      event_frame_ = 0;
      event_start_ = timestamp_;
    }
    if (event_frame_ >= 0) {
      uint32_t duration = static_cast<uint32_t>(event_frame_) * frame_samples;
      bool end = duration >= 4800;
      if (duration > 0) {
        for (int copy = 0; copy < (end ? 3 : 1); ++copy) {
          auto payload = write_telephone_event({.event = event_, .end = end, .volume = 10,
                                                .duration = static_cast<uint16_t>(duration)});
          packets.push_back(rtp(101, event_frame_ == 1, event_start_, *payload));
        }
      }
      if (audio_during_events_) packets.push_back(rtp(111, false, timestamp_, *encoder_->encode(pcm)));
      ++event_frame_;
      if (end) event_frame_ = -1, frames_since_event_ = 0;
    } else {
      packets.push_back(rtp(111, false, timestamp_, *encoder_->encode(pcm)));
      ++frames_since_event_;
    }
    timestamp_ += frame_samples;
    return packets;
  }

 private:
  Bytes rtp(uint8_t payload_type, bool marker, uint32_t timestamp, ByteView payload) {
    RtpHeader header;
    header.payload_type = payload_type;
    header.marker = marker;
    header.sequence = sequence_++;
    header.timestamp = timestamp;
    header.ssrc = 0x0c0c0c0c;
    return write_rtp(header, payload);
  }

  bool audio_during_events_;
  std::optional<OpusVoiceEncoder> encoder_;
  std::string pending_;
  int event_frame_ = -1, frames_since_event_ = 0;
  uint8_t event_ = 0;
  uint32_t event_start_ = 0;
  uint16_t sequence_ = 4242;
  uint32_t timestamp_ = 0x7fff0000;
};

TEST_CASE("voice session: Chromium's DTMF pacing (each 20 ms announced a frame late) still plays every tone") {
  for (bool audio_during_events : {false, true}) {
    for (uint64_t delay_ms : {0, 1, 5, 10, 30}) {
      for (uint64_t jitter_ms : {0, 15}) {
        CAPTURE(audio_during_events);
        CAPTURE(delay_ms);
        CAPTURE(jitter_ms);
        ChromiumLikeSender page(audio_during_events);
        auto cli = session(0x0d0d0d0d);
        Direction network({.delay_ns = delay_ms * 1'000'000, .jitter_ns = jitter_ms * 1'000'000},
                          static_cast<uint32_t>(delay_ms * 100 + jitter_ms));
        std::vector<int16_t> heard;
        uint64_t now_ns = 5'000'000'000;
        size_t tone_blocks = 0;
        for (size_t k = 0; k < 200; ++k, now_ns += frame_ns) {
          if (k == 25) {
            for (char digit : std::string_view("4106#")) page.press(digit);
          }
          network.send(page.frame(signal_frame(k)), now_ns);
          network.deliver(*cli, now_ns);
          Frame out{};
          cli->playout(out, now_ns);
          heard.insert(heard.end(), out.begin(), out.end());
        }
        CHECK_FALSE(page.busy());
        CHECK(cli->take_digits() == "4106#");
        CHECK(decode_dtmf(heard, &tone_blocks) == "4106#");
        // 100 ms per digit as sent; at most the first 20 ms of each is announced too late to play.
        CHECK(tone_blocks >= 5 * 4);
        CHECK(tone_blocks <= 5 * 5 + 5);
      }
    }
  }
}

TEST_CASE("voice session: digits dialled from silence (events and no audio at all) still play as tones") {
  // `tsunagu call --dtmf` from a silent input: the jitter buffer gets no audio
  // to start its timeline from, so the events' own slots must start it.
  ChromiumLikeSender dialler(false);
  auto cli = session(0x0d0d0d0d);
  std::vector<int16_t> heard;
  uint64_t now_ns = 5'000'000'000;
  for (size_t k = 0; k < 200; ++k, now_ns += frame_ns) {
    if (k == 0) {
      for (char digit : std::string_view("29#")) dialler.press(digit);
    }
    for (const Bytes& packet : dialler.frame(signal_frame(k))) {
      auto header = parse_rtp(packet);
      REQUIRE(header);
      if (header->header.payload_type == 101) cli->received(packet, now_ns);  // the events only
    }
    Frame out{};
    cli->playout(out, now_ns);
    heard.insert(heard.end(), out.begin(), out.end());
  }
  CHECK(cli->take_digits() == "29#");
  CHECK(decode_dtmf(heard) == "29#");
}

TEST_CASE("voice session: RTT from the reports matches twice the simulated one-way delay") {
  Call call({.delay_ns = 40'000'000}, {.delay_ns = 40'000'000});
  call.run(300);
  MESSAGE("RTT: A " << call.a->stats().rtt_ms << " ms, B " << call.b->stats().rtt_ms << " ms");
  CHECK(call.a->stats().rtt_ms == doctest::Approx(80).epsilon(0.02));
  CHECK(call.b->stats().rtt_ms == doctest::Approx(80).epsilon(0.02));
  Call asymmetric({.delay_ns = 10'000'000}, {.delay_ns = 70'000'000});
  asymmetric.run(300);
  CHECK(asymmetric.a->stats().rtt_ms == doctest::Approx(80).epsilon(0.02));
}

TEST_CASE("voice session: muted sends encoded silence; held sends no RTP but keeps reporting") {
  Call call({});
  call.run(100);
  CHECK(rms(call.b_heard, call.b_heard.size() - 48000, 48000) > 1000);

  call.a->set_muted(true);
  uint64_t sent = call.a->stats().packets_sent;
  call.run(100);
  CHECK(call.a->stats().packets_sent == sent + 100);  // still sending: the peer hears silence
  CHECK(rms(call.b_heard, call.b_heard.size() - 48000, 48000) < 50);
  call.a->set_muted(false);
  call.run(50);
  CHECK(rms(call.b_heard, call.b_heard.size() - 24000, 24000) > 1000);

  call.a->set_held(true);
  sent = call.a->stats().packets_sent;
  uint64_t reports = call.a->stats().reports_sent;
  uint64_t concealed = call.b->stats().concealed;
  call.run(150);
  CHECK(call.a->stats().packets_sent == sent);        // no RTP
  CHECK(call.a->stats().reports_sent >= reports + 2);  // RTCP (receiver reports) goes on
  CHECK(call.b->stats().concealed <= concealed + 5);   // a short fade, then silence, not "loss"
  CHECK(call.b->stats().lost == 0);
  CHECK(rms(call.b_heard, call.b_heard.size() - 48000, 48000) < 50);
  call.a->set_held(false);
  call.run(100);
  auto best = end_to_end(call.sent, call.b_heard, call.sent.size() - 48000 - 14400, 48000);
  CHECK(best.correlation > 0.9);
}

TEST_CASE("voice session: bad configurations are refused with a reason") {
  VoiceConfig same;
  same.event_payload_type = same.opus_payload_type;
  CHECK_FALSE(VoiceSession::create(same));
  VoiceConfig bad_bitrate;
  bad_bitrate.bitrate = 1;
  auto failed = VoiceSession::create(bad_bitrate);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().find("bitrate") != std::string::npos);
  VoiceConfig bad_complexity;
  bad_complexity.complexity = 11;
  auto refused = VoiceSession::create(bad_complexity);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().find("complexity") != std::string::npos);
}

TEST_CASE("voice session: CPU per second of audio (encode at A + decode at B), measured") {
  // One direction only, so the figure is one session's encode plus one session's decode.
  auto a = session(0x0a0a0a0a), b = session(0x0b0b0b0b);
  auto cpu_ns = [] {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(t.tv_nsec);
  };
  uint64_t encode_ns = 0, decode_ns = 0, now_ns = 1'000'000'000'000;
  const size_t frames = 1500;  // 30 s
  for (size_t k = 0; k < frames; ++k, now_ns += frame_ns) {
    Frame f = signal_frame(k), out{};
    uint64_t t0 = cpu_ns();
    a->capture(f, now_ns);
    auto packets = a->take_packets();
    uint64_t t1 = cpu_ns();
    for (const Bytes& p : packets) b->received(p, now_ns);
    b->playout(out, now_ns);
    uint64_t t2 = cpu_ns();
    encode_ns += t1 - t0;
    decode_ns += t2 - t1;
  }
  double seconds = frames * 0.02;
  MESSAGE("CPU per second of audio: encode (A: capture) " << encode_ns / seconds / 1e6 << " ms, decode (B: received + "
          "playout) " << decode_ns / seconds / 1e6 << " ms, together " << (encode_ns + decode_ns) / seconds / 1e6
          << " ms");
  CHECK(b->stats().packets_received == frames);
  CHECK(b->stats().concealed <= 2);
}

TEST_CASE("voice session: seed corpus for fuzz/media_packets, written when MEDIA_WRITE_CORPUS names a directory") {
  // A short call: Opus, a DTMF digit, sender reports, all as they go on the wire.
  Call call({});
  std::vector<Bytes> wire;
  for (size_t k = 0; k < 120; ++k) {
    if (k == 20) REQUIRE(call.a->send_digits("7"));
    Frame f = signal_frame(k);
    call.a->capture(f, call.now_ns);
    for (auto& p : call.a->take_packets()) wire.push_back(std::move(p));
    call.now_ns += frame_ns;
  }
  // Every kind is there and each packet is what a receiver accepts.
  size_t opus = 0, events = 0, reports = 0;
  for (const Bytes& p : wire) {
    if (is_rtcp(p)) {
      ++reports;
      REQUIRE(parse_rtcp(p));
    } else {
      auto rtp = parse_rtp(p);
      REQUIRE(rtp);
      (rtp->header.payload_type == 111 ? opus : events)++;
    }
  }
  CHECK(opus > 100);
  CHECK(events == 7);
  CHECK(reports >= 2);
  const char* dir = std::getenv("MEDIA_WRITE_CORPUS");
  if (!dir) return;
  auto write = [&](const std::string& name, const Bytes& bytes) {
    std::ofstream out(std::string(dir) + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  auto framed = [&](size_t from, size_t count) {
    Bytes out;
    for (size_t i = from; i < from + count && i < wire.size(); ++i) {
      out.push_back(std::byte(wire[i].size() >> 8));
      out.push_back(std::byte(wire[i].size() & 0xff));
      out.insert(out.end(), wire[i].begin(), wire[i].end());
    }
    return out;
  };
  for (size_t i = 0; i < wire.size(); ++i) {
    bool rtcp = is_rtcp(wire[i]);
    if (rtcp) write("sender_report", wire[i]);
    else if (parse_rtp(wire[i])->header.payload_type == 101) write("telephone_event_rtp", wire[i]);
    else if (i == 5) write("opus_rtp", wire[i]);
  }
  write("call_start_framed", framed(0, 30));
  write("call_with_dtmf_framed", framed(15, 40));
  Bytes reordered = framed(60, 20);
  Bytes tail = framed(50, 10);  // earlier packets again: duplicates and late arrivals
  reordered.insert(reordered.end(), tail.begin(), tail.end());
  write("reordered_framed", reordered);
  RtcpReport with_block;
  with_block.ssrc = 0x0a0a0a0a;
  with_block.sender = SenderInfo{ntp_from_ns(call.now_ns), 96000, 100, 8000};
  with_block.blocks.push_back(ReportBlock{0x0b0b0b0b, 13, 5, 0x00012345, 120, 0x12345678, 32768});
  Bytes compound = write_rtcp_report(with_block);
  for (int v : std::initializer_list<int>{0x81, 202, 0, 3, 0x0a, 0x0a, 0x0a, 0x0a, 1, 3, 'a', '@', 'b', 0, 0, 0, 0x81, 203, 0, 1, 0x0a, 0x0a, 0x0a, 0x0a})
    compound.push_back(std::byte(v));  // SDES with a CNAME, then BYE
  REQUIRE(parse_rtcp(compound));
  write("compound_sr_sdes_bye", compound);
  MESSAGE("wrote the media_packets seed corpus to " << std::string(dir));
}
