// What a call carries once ICE is up, without the loop or ICE: the sealed
// stream (or sealed datagrams), a pipe both ways, one file with its SHA-256
// check, and the echo test's bookkeeping. Inputs (keys, packets from the peer,
// local input, the output drained, `now_ns`) in; actions and a deadline out.
// Received files and stdout go through TransferOutput, the one seam to the
// disk, so tests keep them in memory. The frames are DataFrameType in
// sealed_stream.hpp; their bytes must not change (older CLIs talk to this one).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "audio/tones.hpp"
#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "media/voice_session.hpp"
#include "security/sha256_stream.hpp"
#include "terminal/packet_protection.hpp"
#include "terminal/sealed_stream.hpp"

namespace tsunagu::terminal {

// Where received bytes go. The CLI's: stdout, and DIR/NAME written through a
// fresh temporary renamed only when whole (call_runner.cpp).
class TransferOutput {
 public:
  virtual ~TransferOutput() = default;
  virtual bool write_stdout(ByteView bytes) = 0;
  // NAME is a bare file name. The path it will have, or why not (it exists,
  // it cannot be created): the file is then refused.
  virtual Expected<std::string, std::string> open_file(const std::string& name) = 0;
  virtual bool write_file(ByteView bytes) = 0;
  virtual bool commit_file() = 0;  // durable under its name; false: removed
  virtual void discard_file() = 0;  // not whole: removed, never left behind
};

enum class TransferMode : uint8_t {
  echo_test,  // caller, datagrams: echo_count requests 20 ms apart
  pipe,       // caller: stdin out, peer's bytes to stdout
  send_file,  // caller: one file out, the receiver's SHA-256 back
  answer,     // callee: answers echo requests; a data stream is a pipe both
              // ways, or (receive_directory) a file saved; with `voice`, talks
  voice,      // caller, datagrams: a phone call (TransferConfig::voice)
};

// A phone call's settings: the audio itself comes and goes through
// voice_frame(), 20 ms at a time, from the shell's clock.
struct VoiceSetup {
  media::VoiceConfig media;
  std::string dtmf;          // digits sent once the audio input has ended (1 s after connecting if it never ends)
  bool input_ends = true;    // a file ends; a device (or no input: silence) does not
  uint64_t duration_ns = 0;  // caller: hang up this long after connecting (0: after the input and digits, or ^C)
  uint64_t linger_ns = 1'000'000'000;  // caller: after the input and digits, so the far end hears the tail
  // --hold-at/--resume-at: hold the call this long after connecting, resume
  // then (a scripted 'h', for tests and demos); 0: never.
  uint64_t hold_at_ns = 0, resume_at_ns = 0;
};

// A voice call's hold bookkeeping, for --report. Times are ms since the audio
// started; a period still open when the call ends is closed then.
struct HoldPeriod {
  bool by_me = true;  // this end held the call; false: the peer did
  uint64_t start_ms = 0, end_ms = 0;
};
struct HoldStats {
  uint64_t frames_withheld = 0;    // 20 ms frames not sent because the call was held (by either end)
  uint64_t hold_tone_frames = 0;   // frames of the hold tone played here (the peer held us)
  uint64_t waiting_tone_frames = 0;  // frames with the call-waiting tone mixed in
  uint64_t hold_signals_sent = 0, hold_signals_received = 0;
  std::vector<HoldPeriod> periods;
};
std::string hold_stats_json(const HoldStats& stats);

struct TransferConfig {
  bool caller = true;
  bool reliable = true;  // the ICE byte stream; false: datagrams
  TransferMode mode = TransferMode::answer;
  unsigned echo_count = 20;
  std::string receive_directory;  // listen --recv DIR (named in messages; files go through TransferOutput)
  uint64_t call_started_ns = 0;  // "first byte after N ms" counts from here
  std::optional<VoiceSetup> voice;  // a phone call (caller: mode voice; callee: answer with audio)
  // WebRTC's media profile (a browser): media leaves and arrives as plain
  // RTP/RTCP datagrams that the call's SRTP protects; nothing is sealed, and
  // frames other than media (hold) have no form there.
  bool plain_media = false;
};

namespace transfer {
struct SendStream { Bytes bytes; };    // framed sealed packets: append to the ICE byte stream
struct SendDatagram { Bytes bytes; };  // one sealed datagram
struct StartInput {};                  // start reading stdin (pipe) or the file to send
struct StartAudio {};                  // voice: start the 20 ms audio clock that calls voice_frame()
struct Print { std::string line; bool to_stdout = false; };  // one line, newline added
struct Finish { int exit_code; std::string why; };  // why: printed as "tsunagu: WHY" when not empty
}  // namespace transfer
using TransferAction =
    std::variant<transfer::SendStream, transfer::SendDatagram, transfer::StartInput, transfer::StartAudio,
                 transfer::Print, transfer::Finish>;

struct TransferStats {
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t connected_ns = 0, first_byte_ns = 0, transfer_end_ns = 0;
  double seconds(uint64_t now_ns) const;  // from connected to the transfer's end (or now)
};

class TransferCore {
 public:
  TransferCore(TransferConfig config, TransferOutput& output);

  // The node's key material arrived (accepted): packets can be sealed and opened.
  // False: not 32 bytes.
  bool keys(ByteView secret, const std::string& call_id, uint64_t now_ns);
  // A phone call to or from a browser (before connected()): TransferConfig::plain_media,
  // with the payload types the SDP agreed.
  void use_plain_media(uint8_t opus_payload_type, uint8_t event_payload_type);
  bool plain_media() const { return config_.plain_media; }
  // plain_media: one RTP or RTCP packet, already unprotected.
  void media_packet(ByteView packet, uint64_t now_ns);
  void connected(uint64_t now_ns);  // ICE has a pair: datagrams can leave
  void data(ByteView bytes, uint64_t now_ns);  // from ICE: a datagram or the next stream bytes

  // Local input (after StartInput). For a file, file_opened first.
  // PATH as the user gave it (said back in "delivered PATH"); the header
  // announces SIZE and only its last component, at most 255 bytes.
  void file_opened(const std::string& path, uint64_t size, uint64_t now_ns);
  void input(ByteView chunk, uint64_t now_ns);
  void input_end(uint64_t now_ns);
  void input_failed(int exit_code, const std::string& why);
  // The shell's stream output buffer is empty again (after SendStream).
  void output_drained(uint64_t now_ns);
  void tick(uint64_t now_ns);  // at next_deadline(): the echo test's pace

  // Voice, every 20 ms after StartAudio: the frame captured (nullptr once the
  // input has ended or when there is none: silence is sent) in, the frame to
  // play out. Sends the packets, prints received DTMF digits ("dtmf: D" on
  // stdout), and ends the caller's call when its input and digits are done.
  void voice_frame(const int16_t* captured, media::FrameOut playout, uint64_t now_ns);
  void voice_input_end(uint64_t now_ns);  // the audio file is exhausted
  // The user's keys during a phone call: mute (silence is sent), hold
  // (nothing is sent; the peer hears silence), digits sent now. Each says so.
  void voice_key(char key);
  // This end holds (true) or resumes the call: no media either way while
  // held; the peer is told (a hold frame, repeated every 500 ms while held,
  // three times on resume) and plays the hold tone. Says so when it changes.
  void set_hold(bool held);
  bool held() const { return held_; }
  bool peer_held() const { return peer_held_; }
  // The call-waiting tone mixed into what this call plays out (a second call rings).
  void set_waiting_tone(bool on);
  const HoldStats& hold_stats() const { return hold_stats_; }
  static constexpr unsigned hold_repeat_frames = 25;  // 500 ms
  static constexpr unsigned resume_repeats = 3;
  // Voice after this long without a hold frame from a peer that held us
  // resumes the call (every resume frame lost); 2.5 of the peer's repeats.
  static constexpr uint64_t hold_lapse_ns = 1'250'000'000;
  static constexpr size_t max_hold_periods = 64;  // the report's list; later periods are counted only in frames
  const media::VoiceStats* voice_stats() const { return voice_ ? &voice_->stats() : nullptr; }
  // The node said the call was hung up: whether data may be missing.
  bool hangup_loses_data() const;
  // The caller hung up: it does so once both ends of a pipe were delivered, and
  // its acknowledgement of our end frame may still be in flight over ICE when
  // the node's "ended" comes first. Reports the pipe's throughput if not yet.
  void peer_hung_up(uint64_t now_ns);
  void stop();  // the call ended: a partial file is discarded, nothing more is sent
  void restart_clock(uint64_t now_ns) { config_.call_started_ns = now_ns; }

  std::optional<uint64_t> next_deadline() const;
  std::vector<TransferAction> take_actions() { return std::move(actions_); }
  const TransferStats& stats() const { return stats_; }
  bool started() const { return started_; }
  bool done() const { return done_; }
  // A refusal was sent and the call is kept until the sender has it: the exit
  // code the call ends with, however it ends.
  std::optional<int> refusal_exit_code() const { return refusal_ ? std::optional<int>(refusal_->exit_code) : std::nullopt; }
  const std::vector<double>& echo_rtts_ms() const { return rtts_ms_; }

  static constexpr size_t max_early_bytes = 1u << 20;  // peer packets kept before the keys arrive
  static constexpr size_t max_early_datagrams = 64;    // our datagrams kept until ICE is connected
  static constexpr uint64_t echo_interval_ns = 20'000'000;
  static constexpr unsigned echo_grace_ticks = 50;      // 1 s for stragglers
  static constexpr uint64_t refusal_grace_ns = 2'000'000'000;  // for the sender to read our refusal and hang up

 private:
  void begin(uint64_t now_ns);
  void send_frame(DataFrameType type, ByteView payload);
  void on_packet(ByteView sealed, uint64_t now_ns);
  void note_first_byte(uint64_t now_ns);
  void on_stream_data(ByteView payload);
  void on_stream_end(uint64_t now_ns);
  void on_file_header(ByteView payload);
  void on_file_result(ByteView payload, uint64_t now_ns);
  void on_echo_reply(ByteView payload, uint64_t now_ns);
  void on_media(ByteView payload, uint64_t now_ns);
  void on_hold(ByteView payload, uint64_t now_ns);
  void set_peer_held(bool held);
  void send_hold_signal(bool held);
  void apply_media_hold();
  uint64_t voice_ms(uint64_t now_ns) const { return now_ns > voice_started_ns_ ? (now_ns - voice_started_ns_) / 1'000'000 : 0; }
  void start_voice(uint64_t now_ns);
  void finish_received_file();
  void refuse_file();
  void discard_partial_file();
  void maybe_pipe_done(uint64_t now_ns);
  void report_throughput(uint64_t now_ns);
  void report_echo();
  void print(std::string line, bool to_stdout = false) { actions_.push_back(transfer::Print{std::move(line), to_stdout}); }
  void fail(int exit_code, std::string why);
  // Says why now, but keeps the call (so the refusal frame in flight reaches
  // the sender, whose hang-up ends it) for at most refusal_grace_ns.
  void fail_after_refusal(int exit_code, std::string why);
  void finish(int exit_code);

  struct Refusal {
    int exit_code = 0;
    uint64_t deadline_ns = 0;
  };
  std::optional<Refusal> refusal_;
  uint64_t last_now_ns_ = 0;  // of the frame being handled

  TransferConfig config_;
  TransferOutput& output_;
  std::vector<TransferAction> actions_;
  TransferStats stats_;
  std::optional<PacketSealer> sealer_;
  std::optional<PacketOpener> opener_;
  SealedStreamReader stream_;
  std::vector<Bytes> early_data_, early_datagrams_;
  size_t early_bytes_ = 0;
  bool connected_ = false, started_ = false, done_ = false;
  uint64_t rejected_ = 0;
  // sending
  bool sending_file_ = false, input_done_ = false, end_pending_ = false;
  bool local_end_sent_ = false, remote_end_ = false, local_end_acknowledged_ = false;
  bool throughput_reported_ = false;
  std::string send_name_;
  std::unique_ptr<security::Sha256Stream> send_hash_ = std::make_unique<security::Sha256Stream>();
  Bytes file_digest_;
  // receiving a file
  bool receiving_file_ = false, refused_file_ = false;
  uint64_t expected_size_ = 0;
  std::string received_path_;
  std::unique_ptr<security::Sha256Stream> receive_hash_ = std::make_unique<security::Sha256Stream>();
  // echo test
  std::optional<uint64_t> next_echo_ns_;
  unsigned echo_sent_ = 0, echo_ticks_after_ = 0;
  std::vector<double> rtts_ms_;
  // voice
  std::unique_ptr<media::VoiceSession> voice_;
  bool voice_input_done_ = false, digits_queued_ = false;
  uint64_t voice_started_ns_ = 0;
  std::optional<uint64_t> voice_end_ns_;  // caller: hang up then
  uint64_t media_ignored_ = 0;  // media frames for a callee without audio
  bool muted_ = false, held_ = false;
  // hold and call waiting
  bool peer_held_ = false, waiting_tone_on_ = false, scripted_hold_done_ = false, scripted_resume_done_ = false;
  unsigned hold_frames_ = 0, resume_signals_left_ = 0;
  uint64_t voice_now_ns_ = 0;  // of the last voice frame: the clock of hold periods
  uint64_t last_hold_signal_ns_ = 0;
  std::optional<size_t> my_period_, peer_period_;  // open periods in hold_stats_.periods
  HoldStats hold_stats_;
  audio::ToneGenerator hold_tone_{audio::Tone::hold};
  audio::ToneGenerator waiting_tone_{audio::Tone::call_waiting};
};

}  // namespace tsunagu::terminal
