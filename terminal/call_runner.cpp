// The thin shell around CallCore: libuv for the timer and the input, libnice
// (IceSession) for the media path, the node link or the LAN ring server for
// signalling. Every decision is the core's; this file does what its actions
// say and feeds back what happened.
#include "terminal/call_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "base/files.hpp"
#include "security/lan_identity.hpp"
#include "security/random.hpp"
#include "terminal/call_core.hpp"
#include "terminal/call_path_report.hpp"
#include "terminal/cli_common.hpp"
#include "terminal/ice_session.hpp"
#include "terminal/lan_ring_server.hpp"
#include "terminal/voicemail_receiver.hpp"

namespace tsunagu::terminal {
namespace {

namespace sig = tsunagu::proto;

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

bool write_all(int fd, ByteView data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// stdout, and listen --recv DIR: a fresh NAME.tmp-XXXXXX (O_CREAT|O_EXCL|
// O_NOFOLLOW, 0600) moved to NAME only once whole, never over an existing name.
class DiskOutput final : public TransferOutput {
 public:
  explicit DiskOutput(std::string directory) : directory_(std::move(directory)) {}
  ~DiskOutput() override { discard_file(); }

  bool write_stdout(ByteView bytes) override { return write_all(STDOUT_FILENO, bytes); }

  Expected<std::string, std::string> open_file(const std::string& name) override {
    path_ = (std::filesystem::path(directory_) / name).string();
    // Never over an existing name (a file, or a symlink someone placed there).
    struct stat existing {};
    if (::lstat(path_.c_str(), &existing) == 0) return Unexpected(path_ + " already exists: refusing to overwrite it");
    auto partial = create_temporary_beside(path_);
    if (!partial) return Unexpected(partial.error());
    fd_ = partial->fd;
    partial_ = partial->path;
    return path_;
  }

  bool write_file(ByteView bytes) override { return fd_ >= 0 && write_all(fd_, bytes); }

  bool commit_file() override {
    if (fd_ < 0) return false;
    bool ok = ::fsync(fd_) == 0;
    ::close(fd_);
    fd_ = -1;
    // RENAME_NOREPLACE: a name that appeared meanwhile is not overwritten either.
    if (ok) ok = ::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) == 0;
    if (!ok) ::unlink(partial_.c_str());
    return ok;
  }

  void discard_file() override {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(partial_.c_str());
  }

 private:
  std::string directory_, path_, partial_;
  int fd_ = -1;
};

// A libuv handle owned by one object: closed (and freed by the loop's close
// callback) when the owner goes, so no callback can reach a dead owner.
template <class Handle>
class OwnedHandle {
 public:
  OwnedHandle() = default;
  OwnedHandle(const OwnedHandle&) = delete;
  OwnedHandle& operator=(const OwnedHandle&) = delete;
  ~OwnedHandle() { close(); }
  Handle* get() { return handle_; }
  Handle* make() {
    close();
    handle_ = new Handle{};
    return handle_;
  }
  // For a handle whose uv_*_init failed: libuv does not know it, so no uv_close.
  void forget_uninitialised() {
    delete handle_;
    handle_ = nullptr;
  }
  void close() {
    if (handle_ == nullptr) return;
    auto* handle = reinterpret_cast<uv_handle_t*>(handle_);
    handle_ = nullptr;
    handle->data = nullptr;
    uv_close(handle, [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  }

 private:
  Handle* handle_ = nullptr;
};

// --report: every call this process handled, in the order they ended (a
// listener answers one after another, and two at once with call waiting).
// The file is rewritten whole after each call: the last call's fields at the
// top level, as a single call's report always had them, and "calls" holding
// every call's object.
class ReportFile {
 public:
  explicit ReportFile(std::string path) : path_(std::move(path)) {}
  bool wanted() const { return !path_.empty(); }
  void add(std::string call_object) {
    if (!wanted()) return;
    calls_.push_back(std::move(call_object));
    std::string json = calls_.back();
    json.pop_back();  // its closing brace
    json += ", \"calls\": [";
    for (size_t i = 0; i < calls_.size(); ++i) json += (i == 0 ? "" : ", ") + calls_[i];
    json += "]}\n";
    if (FILE* f = std::fopen(path_.c_str(), "w")) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }

 private:
  std::string path_;
  std::vector<std::string> calls_;
};

// One call's media and data: the core, ICE, the stream output buffer, local
// input and the deadline timer. Signalling actions go to `signalling`.
class CallShell {
 public:
  using Signalling = std::function<void(CallAction&)>;

  // `audio`: a voice call's files or devices, already open (or null).
  // `audio`: a voice call's own files or devices, already open (or null: a
  // listener lends its own with lend_audio()).
  CallShell(uv_loop_t* loop, const CallOptions& options, CallCoreConfig config, Signalling signalling,
            std::unique_ptr<CallAudio> audio = nullptr)
      : loop_(loop), options_(options), output_(options.receive_directory), caller_(config.caller),
        voice_call_(config.transfer.voice.has_value()), core_(std::move(config), output_, mono_ns()),
        signalling_(std::move(signalling)), owned_audio_(std::move(audio)), audio_(owned_audio_.get()) {
    uv_timer_init(loop_, timer_.make());
    timer_.get()->data = this;
  }
  ~CallShell() { release(); }
  CallShell(const CallShell&) = delete;
  CallShell& operator=(const CallShell&) = delete;

  CallCore& core() { return core_; }
  void set_report_file(ReportFile* report) { report_ = report; }
  // A card call's units will not pay the next period: the tone in what the caller hears.
  void card_warning() {
    if (audio_ != nullptr) audio_->start_warning_tone();
  }

  // Call waiting (listen): the listener's audio goes to one call at a time; a
  // call without it runs its clock on silence and plays nowhere.
  void lend_audio(CallAudio* audio) {
    audio_ = audio;
    if (audio_ != nullptr && audio_timer_.get() != nullptr) start_keys();
  }
  // Keys the listener handles itself (switching calls) go there first; the
  // others reach the call that has the audio. Returns whether it took the key.
  void set_key_hook(std::function<bool(char)> hook) { key_hook_ = std::move(hook); }

  // Feeds the core one input, then does what it asks.
  template <class Input>
  void feed(Input input) {
    input(core_, mono_ns());
    pump();
  }

 private:
  void pump() {
    if (pumping_) return;  // the outer pump takes what this input added
    pumping_ = true;
    for (int round = 0; round < 1000; ++round) {
      auto actions = core_.take_actions();
      if (actions.empty()) break;
      bool appended = false;
      for (auto& action : actions) appended |= apply(action);
      if (appended) flush_output();
    }
    pumping_ = false;
    schedule();
  }

  // True when stream bytes were queued (flushed once per batch, so the
  // output is drained only after everything the core queued).
  bool apply(CallAction& action) {
    if (auto* a = std::get_if<transfer::SendStream>(&action)) {
      output_buffer_.insert(output_buffer_.end(), a->bytes.begin(), a->bytes.end());
      return true;
    }
    if (auto* a = std::get_if<transfer::SendDatagram>(&action)) {
      if (ice_) ice_->send(a->bytes);
    } else if (auto* print = std::get_if<transfer::Print>(&action)) {
      if (print->to_stdout) {
        std::fputs((print->line + "\n").c_str(), stdout);
        std::fflush(stdout);
      } else {
        std::cerr << print->line << std::endl;
      }
    } else if (std::holds_alternative<transfer::StartInput>(action)) {
      start_input();
    } else if (std::holds_alternative<transfer::StartAudio>(action)) {
      start_audio();
    } else if (auto* start = std::get_if<call::StartIce>(&action)) {
      start_ice(std::move(start->config));
    } else if (auto* set = std::get_if<call::SetRemote>(&action)) {
      if (ice_) ice_->set_remote(set->remote);
    } else if (auto* add = std::get_if<call::AddRemoteCandidate>(&action)) {
      if (ice_) ice_->add_remote_candidate(add->line);
    } else if (std::holds_alternative<call::ExplainIceFailure>(action)) {
      std::string why = ice_ ? ice_->explain_failure() : std::string("ICE did not connect in time");
      core_.ice_gave_up(why, mono_ns());
    } else if (std::holds_alternative<call::ReleaseMedia>(action)) {
      print_media_summary();
      write_report();
      release();
    } else {
      signalling_(action);
    }
    return false;
  }

  void schedule() {
    if (timer_.get() == nullptr) return;
    auto deadline = core_.next_deadline();
    if (!deadline) {
      uv_timer_stop(timer_.get());
      return;
    }
    uint64_t now = mono_ns();
    uint64_t ms = *deadline > now ? (*deadline - now + 999'999) / 1'000'000 : 0;
    uv_timer_start(timer_.get(), [](uv_timer_t* t) {
      if (auto* self = static_cast<CallShell*>(t->data)) self->feed([](CallCore& c, uint64_t tick_now) { c.tick(tick_now); });
    }, ms, 0);
  }

  void start_ice(IceConfig config) {
    config.local_addresses = options_.ice_addresses;
    IceEvents events;
    events.on_gathered = [this](const IceDescription& d) { feed([&](CallCore& c, uint64_t now) { c.ice_gathered(d, now); }); };
    events.on_connected = [this](const SelectedPair& pair) {
      feed([&](CallCore& c, uint64_t now) { c.ice_connected(pair, now); });
      flush_output();
    };
    events.on_selected_pair_changed = [this](const SelectedPair& pair) {
      feed([&](CallCore& c, uint64_t) { c.ice_pair_changed(pair); });
    };
    events.on_data = [this](ByteView data) {
      // Held back until the audio tick (set_data_wakeups below), a datagram
      // keeps its own arrival time, for the jitter and RTT figures; never
      // before the end of the tick before (whose frames used that time), so
      // time does not run backwards for the core.
      // The source lets a WebRTC call take DTLS only from the selected pair's remote.
      uint64_t arrival = ice_ ? ice_->data_arrival_ns() : 0;
      std::optional<proto::SocketAddress> source = ice_ ? ice_->data_source() : std::nullopt;
      feed([&](CallCore& c, uint64_t now) {
        c.ice_data(data, arrival != 0 ? std::max(arrival, audio_tick_done_ns_) : now, source);
      });
    };
    events.on_writable = [this] { flush_output(); };
    events.on_failed = [this](std::string_view reason) {
      feed([&](CallCore& c, uint64_t now) { c.ice_failed(reason, now); });
    };
    auto session = IceSession::create(loop_, std::move(config), std::move(events));
    if (!session) return core_.ice_setup_failed(session.error(), mono_ns());
    ice_ = std::move(*session);
    if (audio_timer_.get() != nullptr) ice_->set_data_wakeups(false);
    ice_->start();
  }

  void flush_output() {
    while (ice_ && output_offset_ < output_buffer_.size()) {
      size_t taken = ice_->send(ByteView(output_buffer_.data() + output_offset_, output_buffer_.size() - output_offset_));
      if (taken == 0) break;  // on_writable resumes
      output_offset_ += taken;
    }
    if (output_offset_ == output_buffer_.size()) {
      output_buffer_.clear();
      output_offset_ = 0;
    }
    if (output_buffer_.size() - output_offset_ < (256u << 10)) read_more_input();
    if (!output_buffer_.empty()) return;
    core_.output_drained(mono_ns());
    if (!pumping_) pump();
  }

  // ---- local input: stdin (pipe) or the file to send
  void start_input() {
    if (input_fd_ >= 0 || core_.done()) return;
    if (caller_ && options_.mode == CallOptions::Mode::send_file) {
      int fd = ::open(options_.send_file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return core_.input_failed(exit_usage, "cannot open " + options_.send_file + ": " + std::strerror(errno),
                                  mono_ns());
      struct stat st {};
      fstat(fd, &st);
      input_fd_ = fd;
      // The path as given (for "delivered PATH"); the header carries its last component.
      core_.file_opened(options_.send_file, static_cast<uint64_t>(st.st_size), mono_ns());
    } else {
      input_fd_ = STDIN_FILENO;
      open_stdin_stream();
    }
    read_more_input();
  }

  // A pipe or a terminal on stdin is read as a libuv stream, which the call's
  // end stops and closes: a pending uv_fs_read on it would keep the loop (and
  // the process) alive until stdin closed, after the node had ended the call.
  // A regular file is read with uv_fs_read: its reads always finish. (libuv
  // does not close fds 0-2 with their handle: a listener's next call opens
  // stdin again.)
  void open_stdin_stream() {
    uv_handle_type type = uv_guess_handle(STDIN_FILENO);
    if (type == UV_NAMED_PIPE) {
      uv_pipe_t* pipe = stdin_pipe_.make();
      if (uv_pipe_init(loop_, pipe, 0) != 0) return stdin_pipe_.forget_uninitialised();
      pipe->data = this;
      if (uv_pipe_open(pipe, STDIN_FILENO) != 0) return stdin_pipe_.close();
      input_stream_ = reinterpret_cast<uv_stream_t*>(pipe);
    } else if (type == UV_TTY) {
      uv_tty_t* tty = stdin_tty_.make();
      if (uv_tty_init(loop_, tty, STDIN_FILENO, 1) != 0) return stdin_tty_.forget_uninitialised();
      tty->data = this;
      input_stream_ = reinterpret_cast<uv_stream_t*>(tty);
    }
  }

  void read_more_stream() {
    if (stream_reading_) return;
    stream_reading_ = true;
    uv_read_start(
        input_stream_,
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<CallShell*>(h->data);
          self->read_buffer_.resize(max_stream_chunk);
          *buf = uv_buf_init(reinterpret_cast<char*>(self->read_buffer_.data()),
                             static_cast<unsigned>(self->read_buffer_.size()));
        },
        [](uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
          auto* self = static_cast<CallShell*>(stream->data);
          if (self == nullptr || n == 0) return;
          if (n == UV_EOF) {
            self->input_done_ = true;
            self->close_input();
            return self->feed([](CallCore& c, uint64_t now) { c.input_end(now); });
          }
          if (n < 0) {
            self->close_input();
            return self->feed([&](CallCore& c, uint64_t now) {
              c.input_failed(exit_call_failed, std::string("reading input: ") + uv_strerror(static_cast<int>(n)), now);
            });
          }
          ByteView chunk(self->read_buffer_.data(), static_cast<size_t>(n));
          self->feed([&](CallCore& c, uint64_t now) { c.input(chunk, now); });
          // Back-pressure: reading resumes (read_more_input) once the stream output drains.
          if (self->input_stream_ != nullptr && self->output_buffer_.size() - self->output_offset_ >= (256u << 10)) {
            uv_read_stop(self->input_stream_);
            self->stream_reading_ = false;
          }
        });
  }

  void read_more_input() {
    if (input_fd_ < 0 || read_pending_ || input_done_ || core_.done()) return;
    if (input_stream_ != nullptr) return read_more_stream();
    read_pending_ = true;
    read_request_.data = this;
    read_buffer_.resize(max_stream_chunk);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(read_buffer_.data()), static_cast<unsigned>(read_buffer_.size()));
    uv_fs_read(loop_, &read_request_, input_fd_, &buf, 1, -1, [](uv_fs_t* request) {
      auto* self = static_cast<CallShell*>(request->data);
      ssize_t n = request->result;
      uv_fs_req_cleanup(request);
      self->read_pending_ = false;
      if (self->core_.done()) return self->close_input();
      if (n < 0)
        return self->feed([&](CallCore& c, uint64_t now) {
          c.input_failed(exit_call_failed, std::string("reading input: ") + uv_strerror(static_cast<int>(n)), now);
        });
      if (n == 0) {
        self->input_done_ = true;
        return self->feed([](CallCore& c, uint64_t now) { c.input_end(now); });
      }
      ByteView chunk(self->read_buffer_.data(), static_cast<size_t>(n));
      self->feed([&](CallCore& c, uint64_t now) { c.input(chunk, now); });
    });
  }

  void close_input() {
    if (input_fd_ > STDIN_FILENO) ::close(input_fd_);
    input_fd_ = -1;
    input_stream_ = nullptr;
    stream_reading_ = false;
    stdin_pipe_.close();
    stdin_tty_.close();
  }

  // ---- voice: one 20 ms clock moves a frame in from the input and one out
  // to the recording or speaker. Frames are counted from the clock's start,
  // so a late timer catches up rather than letting the audio drift behind
  // real time: a stall of up to max_catch_up frames is made up whole (so a
  // recording keeps the call's timeline); a longer one is skipped.
  void start_audio() {
    if (!voice_call_ || audio_timer_.get() != nullptr) return;
    if (audio_ != nullptr) std::cerr << audio_->describe() << std::endl;
    uv_timer_init(loop_, audio_timer_.make());
    audio_timer_.get()->data = this;
    audio_started_ns_ = mono_ns();
    audio_frames_ = 0;
    start_keys();
    // From now on the clock's tick takes the received datagrams: one wake-up
    // of the loop per 20 ms instead of one more per datagram.
    if (ice_) ice_->set_data_wakeups(false);
    uv_timer_start(audio_timer_.get(), [](uv_timer_t* t) {
      if (auto* self = static_cast<CallShell*>(t->data)) self->audio_tick();
    }, 0, media::frame_ns / 1'000'000);
  }

  // Keys during a phone call from a terminal's stdin (a microphone call, and
  // stdin not a file): read one at a time in raw mode through the loop. ^C
  // arrives as a byte in raw mode and is raised as SIGINT, so it hangs up as
  // always; the terminal's mode is restored when the call's media is released.
  // One reader of the terminal in the process (call waiting: the call that
  // first has the audio reads; a later one takes over when it ends).
  void start_keys() {
    if (!options_.audio.devices || !options_.audio.input_file.empty() || ::isatty(STDIN_FILENO) == 0) return;
    if (options_.mode == CallOptions::Mode::pipe || keys_.get() != nullptr || keys_taken_) return;
    keys_taken_ = true;
    uv_tty_t* tty = keys_.make();
    if (uv_tty_init(loop_, tty, STDIN_FILENO, 1) != 0) {
      keys_taken_ = false;
      return keys_.forget_uninitialised();
    }
    tty->data = this;
    uv_tty_set_mode(tty, UV_TTY_MODE_RAW);
    std::cerr << (key_hook_ ? "keys: m mute, h hold, w answer a waiting call / switch calls, 0-9 * # A-D dial, ^C hang up"
                            : "keys: m mute, h hold, 0-9 * # A-D dial, ^C hang up")
              << std::endl;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tty),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<CallShell*>(h->data);
          *buf = uv_buf_init(self->key_buffer_, sizeof self->key_buffer_);
        },
        [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<CallShell*>(stream->data);
          if (self == nullptr || n <= 0) return;
          for (ssize_t i = 0; i < n; ++i) {
            char key = buf->base[i];
            if (key == 3) {  // ^C in raw mode
              ::raise(SIGINT);
              return;
            }
            if (self->key_hook_ && self->key_hook_(key)) continue;
            self->feed([key](CallCore& c, uint64_t) { c.voice_key(key); });
          }
        });
  }

  void stop_keys() {
    if (keys_.get() == nullptr) return;
    uv_tty_reset_mode();
    keys_.close();
    keys_taken_ = false;
  }

  void audio_tick() {
    static constexpr uint64_t max_catch_up = 25;  // 500 ms
    if (ice_) ice_->deliver_pending();  // what arrived since the last tick, before this frame's playout
    if (audio_timer_.get() == nullptr) return;  // a delivered datagram ended the call
    uint64_t due = (mono_ns() - audio_started_ns_) / media::frame_ns + 1;
    if (due > audio_frames_ + max_catch_up) audio_frames_ = due - max_catch_up;
    std::array<int16_t, media::frame_samples> playout{};
    while (audio_frames_ < due && !core_.done()) {
      ++audio_frames_;
      const int16_t* captured = audio_ != nullptr ? audio_->capture() : nullptr;
      if (audio_ != nullptr && audio_->input_ends() && audio_->input_ended() && !input_end_told_) {
        input_end_told_ = true;
        if (auto problem = audio_->problem(); !problem.empty()) std::cerr << "tsunagu: " << problem << std::endl;
        feed([](CallCore& c, uint64_t now) { c.voice_input_end(now); });
      }
      feed([&](CallCore& c, uint64_t now) { c.voice_frame(captured, playout, now); });
      if (audio_ != nullptr) audio_->play(playout);
      if (audio_frames_ % 50 == 0) print_live_line();
    }
    audio_tick_done_ns_ = mono_ns();
  }

  // Once a second on a terminal: how the call sounds now.
  void print_live_line() const {
    static const bool on_terminal = ::isatty(STDERR_FILENO) != 0;
    const media::VoiceStats* voice = core_.transfer().voice_stats();
    if (!on_terminal || voice == nullptr || core_.done() || audio_ == nullptr) return;
    uint64_t seconds = audio_frames_ / 50;
    double expected = static_cast<double>(voice->packets_received + voice->lost);
    double loss = expected > 0 ? 100.0 * static_cast<double>(voice->lost) / expected : 0;
    char line[200];
    std::snprintf(line, sizeof line, "\r%llu:%02llu  Opus %d kbit/s  loss %.1f%%  jitter %.1f ms  RTT %s  buffer %u ms   ",
                  static_cast<unsigned long long>(seconds / 60), static_cast<unsigned long long>(seconds % 60),
                  voice->bitrate / 1000, loss, voice->jitter_ms,
                  voice->rtt_ms < 0 ? "-" : (std::to_string(static_cast<int>(voice->rtt_ms)) + " ms").c_str(),
                  voice->jitter_buffer_ms);
    std::fputs(line, stderr);
  }

  // Closes what keeps the loop alive: the ICE session (releasing any TURN
  // allocation), the timers, the input file (after a pending read), and the
  // audio (the recording takes its name now).
  void release() {
    if (!read_pending_) close_input();
    timer_.close();
    audio_timer_.close();
    stop_keys();
    audio_ = nullptr;  // a lent one is the listener's to finish
    if (owned_audio_ != nullptr) {
      if (auto counters = owned_audio_->device_counters(); !counters.empty()) std::cerr << counters << std::endl;
      if (auto finished = owned_audio_->finish(); !finished) std::cerr << "tsunagu: " << finished.error() << std::endl;
      owned_audio_.reset();
    }
    if (ice_) ice_->close();
  }

  void print_media_summary() const {
    const media::VoiceStats* voice = core_.transfer().voice_stats();
    if (voice == nullptr) return;
    if (::isatty(STDERR_FILENO) != 0) std::fputs("\n", stderr);  // below the live line
    char rtt[32] = "unknown";
    if (voice->rtt_ms >= 0) std::snprintf(rtt, sizeof rtt, "%.1f ms", voice->rtt_ms);
    char line[320];
    std::snprintf(line, sizeof line,
                  "audio: %llu packets sent, %llu received, %llu lost, %llu FEC-recovered, %llu concealed, %llu late; "
                  "jitter %.1f ms, RTT %s, jitter buffer %u ms",
                  static_cast<unsigned long long>(voice->packets_sent),
                  static_cast<unsigned long long>(voice->packets_received), static_cast<unsigned long long>(voice->lost),
                  static_cast<unsigned long long>(voice->fec_recovered),
                  static_cast<unsigned long long>(voice->concealed), static_cast<unsigned long long>(voice->late),
                  voice->jitter_ms, rtt, voice->jitter_buffer_ms);
    std::cerr << line << std::endl;
  }

  void write_report() const {
    if (report_ == nullptr || !report_->wanted()) return;
    const auto& stats = core_.transfer().stats();
    const auto& pair = core_.pair();
    auto ms = [&](uint64_t ns) { return ns == 0 ? std::string("null") : std::to_string(core_.ms_since_start(ns)); };
    std::string json = "{\"call_id\": \"" + core_.call_id() + "\", \"peer\": " + json_string(core_.peer()) +
                       ", \"accepted_ms\": " + ms(core_.accepted_ns()) +
                       ", \"connected_ms\": " + ms(stats.connected_ns) + ", \"first_byte_ms\": " +
                       ms(stats.first_byte_ns) + ", \"local_type\": \"" + pair.local_type + "\", \"remote_type\": \"" +
                       pair.remote_type + "\", \"local\": \"" + pair.local.to_string() + "\", \"remote\": \"" +
                       pair.remote.to_string() + "\", \"bytes_sent\": " + std::to_string(stats.bytes_sent) +
                       ", \"bytes_received\": " + std::to_string(stats.bytes_received) +
                       ", \"transfer_seconds\": " + std::to_string(stats.seconds(mono_ns()));
    if (const media::VoiceStats* voice = core_.transfer().voice_stats()) {
      // What a listener hears is this late, devices aside: half the RTT on the
      // network, Opus' 6.5 ms look-ahead, and this end's jitter buffer.
      std::string media_json = media::voice_stats_json(*voice);
      char estimate[64] = "null";
      if (voice->rtt_ms >= 0)
        std::snprintf(estimate, sizeof estimate, "%.1f", voice->rtt_ms / 2 + 6.5 + voice->jitter_buffer_ms);
      if (!media_json.empty() && media_json.back() == '}')
        media_json.insert(media_json.size() - 1, std::string(", \"mouth_to_ear_estimate_ms\": ") + estimate);
      json += ", \"call_seconds\": " + std::to_string(stats.seconds(mono_ns())) + ", \"media\": " + media_json +
              ", \"hold\": " + hold_stats_json(core_.transfer().hold_stats());
    }
    if (const WebRtcTransport* webrtc = core_.webrtc()) json += ", \"webrtc\": " + webrtc_report_json(*webrtc);
    json += "}";
    report_->add(std::move(json));
  }

  uv_loop_t* loop_;
  const CallOptions& options_;
  DiskOutput output_;
  bool caller_, voice_call_;
  CallCore core_;
  Signalling signalling_;
  ReportFile* report_ = nullptr;
  bool pumping_ = false;
  std::unique_ptr<IceSession> ice_;
  OwnedHandle<uv_timer_t> timer_;
  Bytes output_buffer_;
  size_t output_offset_ = 0;
  int input_fd_ = -1;
  bool read_pending_ = false, input_done_ = false;
  uv_fs_t read_request_{};
  Bytes read_buffer_;
  OwnedHandle<uv_pipe_t> stdin_pipe_;  // --pipe's stdin when it is a pipe ...
  OwnedHandle<uv_tty_t> stdin_tty_;    // ... or a terminal
  uv_stream_t* input_stream_ = nullptr;
  bool stream_reading_ = false;
  std::unique_ptr<CallAudio> owned_audio_;
  CallAudio* audio_ = nullptr;  // owned_audio_, or the listener's while lent
  OwnedHandle<uv_timer_t> audio_timer_;
  OwnedHandle<uv_tty_t> keys_;
  std::function<bool(char)> key_hook_;
  static inline bool keys_taken_ = false;
  char key_buffer_[64];
  uint64_t audio_started_ns_ = 0, audio_frames_ = 0;
  uint64_t audio_tick_done_ns_ = 0;  // when the last audio tick's frames were done
  bool input_end_told_ = false;
};

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

}  // namespace

namespace {

CallCoreConfig core_config(const CallOptions& options, bool caller, bool reliable) {
  CallCoreConfig config;
  config.caller = caller;
  config.reliable = reliable;
  config.callee = options.callee;
  config.relay_only = options.relay_only;
  config.ice_timeout_ns = uint64_t{options.ice_timeout_s} * 1'000'000'000u;
  switch (options.mode) {
    case CallOptions::Mode::echo_test: config.transfer.mode = TransferMode::echo_test; break;
    case CallOptions::Mode::pipe: config.transfer.mode = caller ? TransferMode::pipe : TransferMode::answer; break;
    case CallOptions::Mode::send_file: config.transfer.mode = TransferMode::send_file; break;
    case CallOptions::Mode::voice: config.transfer.mode = TransferMode::voice; break;
    case CallOptions::Mode::listen: config.transfer.mode = TransferMode::answer; break;
  }
  if ((options.mode == CallOptions::Mode::voice || options.audio.any()) && !reliable) {
    VoiceSetup voice;
    security::random_bytes(std::as_writable_bytes(std::span(&voice.media.ssrc, 1)));
    voice.dtmf = options.dtmf;
    if (options.opus_complexity >= 0) voice.media.complexity = options.opus_complexity;
    // A file ends; so does no input at all (`call ID --dtmf 123`: the digits
    // go at once); only a microphone talks until ^C or --duration.
    voice.input_ends = !options.audio.input_file.empty() || !options.audio.devices;
    voice.duration_ns = uint64_t{options.duration_s} * 1'000'000'000u;
    voice.hold_at_ns = static_cast<uint64_t>(options.hold_at_s * 1e9);
    voice.resume_at_ns = static_cast<uint64_t>(options.resume_at_s * 1e9);
    // After the input's end the far end still plays out what its jitter
    // buffer holds: at most max_jitter_ms, so that plus a round trip's
    // margin hears the tail. Every frame of a longer wait is encoded and
    // decoded for nothing (a second of it was an eighth of a short call's CPU).
    voice.linger_ns = (uint64_t{voice.media.max_jitter_ms} + 100) * 1'000'000u;
    config.transfer.voice = std::move(voice);
  }
  config.transfer.echo_count = options.echo_count;
  config.transfer.receive_directory = options.receive_directory;
  config.auto_accept_from = options.auto_accept_from;
  // --pipe reads stdin itself; without a terminal there is nobody to ask.
  config.can_prompt = isatty(STDIN_FILENO) && options.mode != CallOptions::Mode::pipe;
  return config;
}

// "accept? [y/N]" answered through the loop: a uv_tty read of one line, so
// the node link, rings and ^C keep being served while the user decides.
class AcceptPrompt {
 public:
  AcceptPrompt(uv_loop_t* loop, const std::string& caller, std::function<void(bool)> answered)
      : answered_(std::move(answered)) {
    std::cerr << "incoming call from " << caller << " - accept? [y/N] " << std::flush;
    uv_tty_t* tty = tty_.make();
    if (uv_tty_init(loop, tty, STDIN_FILENO, 1) != 0) {
      tty_.forget_uninitialised();
      return;
    }
    tty->data = this;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tty),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<AcceptPrompt*>(h->data);
          *buf = uv_buf_init(self->buffer_, sizeof self->buffer_);
        },
        [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<AcceptPrompt*>(stream->data);
          if (self == nullptr) return;
          if (n < 0) return self->decide(false);  // EOF: nobody said yes
          self->line_.append(buf->base, static_cast<size_t>(n));
          if (self->line_.find('\n') != std::string::npos || self->line_.size() > 256)
            self->decide(!self->line_.empty() && (self->line_[0] == 'y' || self->line_[0] == 'Y'));
        });
  }
  bool failed() { return tty_.get() == nullptr && !decided_; }

 private:
  void decide(bool accept) {
    if (decided_) return;
    decided_ = true;
    tty_.close();
    answered_(accept);  // may destroy this prompt: nothing after
  }

  std::function<void(bool)> answered_;
  OwnedHandle<uv_tty_t> tty_;
  char buffer_[256];
  std::string line_;
  bool decided_ = false;
};

// A call on a card (docs/cards.md): the card, its password and the route
// go with the first call request.
void add_card_attributes(proto::MessageBuilder& b, const CardCallOptions& card) {
  if (card.card.empty()) return;
  b.add(sig::attr::card, card.card);
  b.add_string(sig::attr::card_password, card.password);
  b.add_string(sig::attr::card_route, card.route);
  b.add_u64(sig::attr::card_update_version, card.update_version);
}

// The issuer's newer update, when the node sent one (with the card's units
// or its refusal).
void take_card_update(const proto::Message* m, const CardCallOptions& card) {
  const auto* update = m ? m->find(sig::attr::card_update) : nullptr;
  if (update == nullptr) return;
  if (card.on_key_rollovers) {
    std::vector<Bytes> statements;
    for (const auto* statement : m->find_all(sig::attr::card_key_rollover))
      statements.emplace_back(statement->value.begin(), statement->value.end());
    if (!statements.empty()) card.on_key_rollovers(statements);
  }
  if (card.on_update) card.on_update(update->value);
}

void add_hangup_attributes(proto::MessageBuilder& b, const call::SendHangup& hangup) {
  b.add_string(sig::attr::call_id, hangup.call_id);
  if (hangup.refusal_code != 0) b.add_error(hangup.refusal_code, hangup.refusal_reason.substr(0, 200));
}

// The node's word on the card's units, at the start and after each debit.
void print_card_units(const proto::Message& m) {
  const auto* units = m.find(sig::attr::card_units);
  if (units == nullptr) return;
  std::cerr << "card: " << proto::read_u64(*units).value_or(0) << " units left" << std::endl;
  if (m.find(sig::attr::card_warning) != nullptr)
    std::cerr << "card: warning: the units left do not pay for the next minute; the call ends then" << "\a"
              << std::endl;
}

}  // namespace

int run_call(const CallOptions& options) {
  // The audio opens first: a bad file or a missing device rings nobody.
  std::unique_ptr<CallAudio> audio;
  if (options.mode == CallOptions::Mode::voice) {
    auto opened = CallAudio::open(options.audio);
    if (!opened) {
      std::cerr << "tsunagu: " << opened.error() << std::endl;
      return exit_usage;
    }
    audio = std::move(*opened);
  }
  Loop loop;
  int exit_code = 0;
  bool reliable = options.mode != CallOptions::Mode::echo_test && options.mode != CallOptions::Mode::voice;
  ReportFile report(options.report_file);
  std::unique_ptr<CallShell> shell;
  std::unique_ptr<NodeClient> node;
  // The caller's signalling: each request's answer goes back to the core.
  auto signalling = [&](CallAction& action) {
    if (auto* a = std::get_if<call::SendPrepare>(&action)) {
      node->request(
          sig::method::call,
          [&](proto::MessageBuilder& b) {
            b.add_string(sig::attr::user_id, a->callee);
            b.add_u32(sig::attr::call_media, a->reliable ? 1 : 0);
            add_card_attributes(b, options.card);
          },
          [&](const proto::Message* answer, std::string_view error) {
            take_card_update(answer, options.card);
            shell->feed([&](CallCore& c, uint64_t now) { c.prepare_answered(answer, error, now); });
          });
    } else if (auto* place = std::get_if<call::SendPlace>(&action)) {
      node->request(
          sig::method::call,
          [&](proto::MessageBuilder& b) {
            b.add_string(sig::attr::call_id, place->call_id);
            b.add_string(sig::attr::user_id, place->callee);
            b.add_string(sig::attr::ice_description, place->offer);
            if (place->webrtc) b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
          },
          [&](const proto::Message* answer, std::string_view error) {
            shell->feed([&](CallCore& c, uint64_t now) { c.place_answered(answer, error, now); });
          });
    } else if (auto* hangup = std::get_if<call::SendHangup>(&action)) {
      node->request(
          sig::method::hangup, [&](proto::MessageBuilder& b) { add_hangup_attributes(b, *hangup); },
          [&](const proto::Message*, std::string_view) {
            shell->feed([](CallCore& c, uint64_t) { c.hangup_answered(); });
          });
    } else if (std::holds_alternative<call::StopLink>(action)) {
      node->stop();
    } else if (auto* path = std::get_if<call::ReportPath>(&action)) {
      send_path_report(*node, *path);
    }
  };

  NodeClientEvents events;
  // First the call is prepared: the node checks the callee can be rung and
  // hands out this call's STUN/TURN settings; then ICE gathers with them and
  // the offer rings the callee.
  events.on_logged_in = [&](const LoginInfo&) {
    if (shell) return;
    shell = std::make_unique<CallShell>(&loop.loop, options, core_config(options, true, reliable), signalling,
                                        std::move(audio));
    shell->set_report_file(&report);
    shell->feed([](CallCore& c, uint64_t now) { c.logged_in(now); });
  };
  // A card call through a connection agent: no login, the call starts once TLS is up.
  events.on_connected = [&] { events.on_logged_in(LoginInfo{}); };
  events.on_node_indication = [&](const proto::Message& m) {
    if (m.method == sig::method::card_units) {
      if (shell && m.find(sig::attr::card_warning) != nullptr) shell->card_warning();
      return take_card_update(&m, options.card), print_card_units(m);
    }
    if (shell) shell->feed([&](CallCore& c, uint64_t now) { c.call_event(m, now); });
  };
  events.on_node_request = [&](const proto::Message& m) {
    // A query link is never rung; refuse anything else the node might ask.
    auto refusal = proto::MessageBuilder::response_to(m, proto::MessageClass::error);
    refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
    refusal.add_error(sig::error::busy, "Busy");
    node->send_message(refusal.finish());
  };
  events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
    if (shell) return shell->feed([&](CallCore& c, uint64_t now) { c.link_stopped(failure, detail, now); });
    if (failure != ClientFailure::none) {
      std::cerr << "tsunagu: " << detail << std::endl;
      exit_code = exit_for_failure(failure);
    }
  };
  NodeClientOptions node_options = options.node;
  node_options.role = sig::link_role::query;
  node = std::make_unique<NodeClient>(&loop.loop, node_options, events);
  uv_signal_t interrupt{};
  uv_signal_init(&loop.loop, &interrupt);
  std::function<void()> on_interrupt = [&] {
    if (shell) return shell->feed([](CallCore& c, uint64_t now) { c.interrupted(now); });
    exit_code = exit_interrupted;
    node->stop();
  };
  interrupt.data = &on_interrupt;
  uv_signal_start(&interrupt, [](uv_signal_t* h, int) { (*static_cast<std::function<void()>*>(h->data))(); }, SIGINT);
  uv_unref(reinterpret_cast<uv_handle_t*>(&interrupt));
  if (auto started = node->start(); !started) {
    std::cerr << "tsunagu: " << started.error().detail << std::endl;
    exit_code = exit_network;
  }
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  if (shell && shell->core().exit_code()) exit_code = *shell->core().exit_code();
  shell.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&interrupt), nullptr);
  return exit_code;
}

int run_listen(const CallOptions& options) {
  // The audio is opened when a call comes in (the greeting from its start, the
  // recording afresh) and kept while any call is up; once now, so a bad file
  // or device stops us at once.
  if (options.audio.any()) {
    auto opened = CallAudio::open(options.audio);  // closed again at once; a recording is not kept
    if (!opened) {
      std::cerr << "tsunagu: " << opened.error() << std::endl;
      return exit_usage;
    }
  }
  ReportFile report(options.report_file);  // before the lines: they write to it until they go
  Loop loop;
  int exit_code = 0;
  // One line per call: the first, and (call waiting) a second rung while the
  // first is up. The listener's audio is lent to one line at a time; the
  // other is held (or, still ringing, heard as the call-waiting tone).
  struct Line {
    std::unique_ptr<CallShell> shell;
    std::function<void(ByteView)> reply_ring;  // to its ring, on the link it came from
    bool waiting = false;  // rung while another call was up: answered with w or --answer-waiting-after
  };
  std::vector<std::unique_ptr<Line>> lines, finished_lines;  // finished: destroyed outside their own callbacks
  std::unique_ptr<CallAudio> audio;
  Line* talking = nullptr;  // the line that has the audio
  std::unique_ptr<AcceptPrompt> prompt, finished_prompt;
  OwnedHandle<uv_timer_t> answer_timer;
  std::function<void()> stop_listening;  // the node link, or the LAN server
  std::function<void(CallShell*, const std::string&)> fetch_turn;
  std::function<void(const call::SendHangup&)> hang_up;  // a callee's own end of a call (a refused page)
  std::function<void(const call::ReportPath&)> report_path;  // to the node; a LAN ring's goes on its own link
  std::function<void()> switch_lines;
  std::function<void(Line*, CallAction&)> handle_action;

  auto alive = [&](Line* line) {
    return std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return l.get() == line; });
  };
  auto give_audio = [&](Line* to) {
    talking = to;
    for (auto& line : lines) line->shell->lend_audio(line.get() == to ? audio.get() : nullptr);
  };
  auto waiting_line = [&]() -> Line* {
    for (auto& line : lines)
      if (line->waiting) return line.get();
    return nullptr;
  };
  // w, or --answer-waiting-after: the call talking now is held, the waiting
  // one answered with the audio.
  auto answer_waiting = [&] {
    Line* ringing = waiting_line();
    if (ringing == nullptr) return;
    answer_timer.close();
    ringing->waiting = false;
    for (auto& line : lines) line->shell->core().waiting_tone(false);
    if (talking != nullptr && talking != ringing) {
      std::cerr << "holding the call with " << talking->shell->core().peer() << " (w: switch back)" << std::endl;
      talking->shell->feed([](CallCore& c, uint64_t) { c.voice_hold(true); });
    }
    give_audio(ringing);
    ringing->shell->feed([](CallCore& c, uint64_t now) { c.accept_decision(true, now); });
  };
  switch_lines = [&] {
    if (waiting_line() != nullptr) return answer_waiting();
    Line* other = nullptr;
    for (auto& line : lines)
      if (line.get() != talking && !line->shell->core().done()) other = line.get();
    if (other == nullptr) return;
    std::cerr << "switching to the call with " << other->shell->core().peer() << std::endl;
    if (talking != nullptr) talking->shell->feed([](CallCore& c, uint64_t) { c.voice_hold(true); });
    give_audio(other);
    other->shell->feed([](CallCore& c, uint64_t) { c.voice_hold(false); });
  };
  std::function<void()> answer_waiting_now = answer_waiting;  // for the timer's callback
  auto line_over = [&](Line* over_line, const call::CallOver& over) {
    auto at = std::find_if(lines.begin(), lines.end(), [&](const auto& l) { return l.get() == over_line; });
    if (at == lines.end()) return;
    finished_lines.push_back(std::move(*at));
    lines.erase(at);
    if (over_line->waiting) {  // it stopped ringing unanswered
      answer_timer.close();
      for (auto& line : lines) line->shell->core().waiting_tone(false);
    }
    if (talking == over_line) {
      talking = nullptr;
      // Back to the call on hold, if one is.
      for (auto& line : lines) {
        if (line->waiting || line->shell->core().done()) continue;
        std::cerr << "back to the call with " << line->shell->core().peer() << std::endl;
        give_audio(line.get());
        line->shell->feed([](CallCore& c, uint64_t) { c.voice_hold(false); });
        break;
      }
    }
    Line* still_ringing = waiting_line();
    if (talking == nullptr && still_ringing != nullptr && options.answer_waiting_after_s < 0) {
      // Nothing left to hold: the waiting call is asked about as any other.
      still_ringing->waiting = false;
      CallAction ask = call::PromptAccept{still_ringing->shell->core().peer()};
      handle_action(still_ringing, ask);
    }
    if (over.answered) exit_code = over.exit_code;
    if (!lines.empty()) return;
    if (audio != nullptr) {  // the recording takes its name now; the next call opens afresh
      if (auto counters = audio->device_counters(); !counters.empty()) std::cerr << counters << std::endl;
      if (auto finished = audio->finish(); !finished) std::cerr << "tsunagu: " << finished.error() << std::endl;
      audio.reset();
    }
    // --once: one ring handled, answered or not (declined, or its caller gave up).
    if (options.once) stop_listening();
  };

  handle_action = [&](Line* line, CallAction& action) {
    if (auto* a = std::get_if<call::ReplyRing>(&action)) {
      if (line->reply_ring) line->reply_ring(a->message);
    } else if (auto* turn = std::get_if<call::FetchTurn>(&action)) {
      if (fetch_turn) fetch_turn(line->shell.get(), turn->call_id);
    } else if (auto* hangup = std::get_if<call::SendHangup>(&action)) {
      if (hang_up) hang_up(*hangup);
    } else if (auto* ask = std::get_if<call::PromptAccept>(&action)) {
      if (line->waiting) {
        std::cerr << "call waiting: " << ask->caller << " is calling (w: answer, holding this call)" << std::endl;
        return;
      }
      prompt = std::make_unique<AcceptPrompt>(&loop.loop, ask->caller, [&, line](bool accept) {
        finished_prompt = std::move(prompt);
        if (alive(line)) line->shell->feed([&](CallCore& c, uint64_t now) { c.accept_decision(accept, now); });
      });
      if (prompt->failed()) {
        finished_prompt = std::move(prompt);
        line->shell->core().accept_decision(false, mono_ns());
      }
    } else if (auto* path = std::get_if<call::ReportPath>(&action)) {
      if (report_path) report_path(*path);
      else if (line->reply_ring) line->reply_ring(path_report_message(*path));  // to the agent, which relays it
    } else if (auto* over = std::get_if<call::CallOver>(&action)) {
      // A question still open closes (inside its own answer it is already
      // in finished_prompt, so this never destroys a running callback).
      if (!line->waiting) prompt.reset();
      line_over(line, *over);
    }
  };

  // A ring, from the node or (LAN mode) from the agent; `reply` answers it on
  // the link it came from. From the node, accepting starts with this call's
  // TURN credentials (turn_credentials with the CALL-ID); the agent's ring carries them.
  std::optional<VoicemailReceiver> mailbox;
  if (!options.lan_mailbox.empty()) mailbox.emplace(options.lan_mailbox);
  auto on_ring = [&](const proto::Message& ring, std::function<void(ByteView)> reply, bool from_node) {
    if (ring.method == sig::method::voicemail_deliver && ring.message_class == proto::MessageClass::request) {
      if (!mailbox) {
        auto refusal = proto::MessageBuilder::response_to(ring, proto::MessageClass::error);
        refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
        refusal.add_error(sig::error::forbidden, "Forbidden: this terminal keeps no mailbox (listen --mailbox DIR)");
        return reply(refusal.finish());
      }
      std::string saved;
      reply(mailbox->handle(ring, &saved));
      const auto* from = ring.find(sig::attr::caller_id);
      if (!saved.empty())
        std::cerr << "voicemail from " << (from ? proto::read_string(*from) : "") << " saved: " << saved << std::endl;
      return;
    }
    if (ring.method != sig::method::ring) return;
    auto busy = [&] {
      auto refusal = proto::MessageBuilder::response_to(ring, proto::MessageClass::error);
      refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
      refusal.add_error(sig::error::busy, "Busy");
      reply(refusal.finish());
    };
    const proto::Attribute* media = ring.find(sig::attr::call_media);
    bool reliable = media != nullptr && proto::read_u32(*media).value_or(0) == 1;
    CallCoreConfig config = core_config(options, false, reliable);
    config.fetch_turn = from_node;
    bool waiting = false;
    if (!lines.empty()) {
      // Call waiting: a second phone call while talking on one (never a
      // third, nor a data call: the CLI has one stdin/stdout).
      Line* first = lines.front().get();
      waiting = lines.size() == 1 && config.transfer.voice && first->shell->core().transfer().voice_stats() != nullptr &&
                !first->shell->core().done();
      if (!waiting) return busy();
      config.auto_accept_from.clear();  // answered by w or --answer-waiting-after, never at once
      config.can_prompt = true;
    }
    if (config.transfer.voice && audio == nullptr) {
      auto opened = CallAudio::open(options.audio);
      if (!opened) {
        std::cerr << "tsunagu: " << opened.error() << std::endl;
        return busy();
      }
      audio = std::move(*opened);
    }
    finished_lines.clear();
    auto line = std::make_unique<Line>();
    Line* raw = line.get();
    raw->reply_ring = std::move(reply);
    raw->waiting = waiting;
    raw->shell = std::make_unique<CallShell>(&loop.loop, options, std::move(config),
                                             [&, raw](CallAction& action) { handle_action(raw, action); });
    raw->shell->set_report_file(&report);
    raw->shell->set_key_hook([&](char key) {
      if (key == 'w' || key == 'W') {
        switch_lines();
        return true;
      }
      if (talking == nullptr || talking->shell->core().done()) return false;
      talking->shell->feed([key](CallCore& c, uint64_t) { c.voice_key(key); });
      return true;
    });
    lines.push_back(std::move(line));
    if (!waiting) {
      give_audio(raw);
    } else {
      for (auto& l : lines)
        if (l.get() != raw) l->shell->core().waiting_tone(true);
      if (options.answer_waiting_after_s >= 0) {
        uv_timer_init(&loop.loop, answer_timer.make());
        answer_timer.get()->data = &answer_waiting_now;
        uv_timer_start(answer_timer.get(), [](uv_timer_t* t) {
          if (t->data != nullptr) (*static_cast<std::function<void()>*>(t->data))();
        }, static_cast<uint64_t>(options.answer_waiting_after_s * 1000), 0);
      }
    }
    raw->shell->feed([&](CallCore& c, uint64_t now) { c.ring(ring, now); });
  };
  auto on_indication = [&](const proto::Message& m) {
    // Each line takes the events of its own call.
    std::vector<Line*> current;
    for (auto& line : lines) current.push_back(line.get());
    for (Line* line : current)
      if (alive(line)) line->shell->feed([&](CallCore& c, uint64_t now) { c.call_event(m, now); });
  };

  std::unique_ptr<NodeClient> node;
  std::unique_ptr<LanRingServer> lan;
  if (!options.lan_bundle.empty()) {
    LanServerOptions lan_options;
    lan_options.bundle_directory = options.lan_bundle;
    lan_options.listen = options.lan_listen;
    lan_options.agent_addresses = options.lan_agent_addresses;
    LanRingServer::Events events;
    events.on_request = [&](const proto::Message& ring, std::function<void(ByteView)> reply) {
      on_ring(ring, std::move(reply), false);
    };
    events.on_indication = on_indication;
    auto server = LanRingServer::start(&loop.loop, lan_options, std::move(events));
    if (!server) {
      std::cerr << "tsunagu: --lan: " << server.error() << std::endl;
      return exit_network;
    }
    lan = std::move(*server);
    std::string name = lan->common_name().substr(security::lan_terminal_name_prefix.size());
    std::cerr << "listening on the LAN as extension " << name << " at " << lan->address().to_string()
              << " (rings come from the LAN agent)" << std::endl;
    stop_listening = [&] {
      if (lan) lan->stop();
    };
  } else {
    NodeClientEvents events;
    events.on_logged_in = [&](const LoginInfo& info) {
      std::cerr << "listening as " << options.node.user_id << " (the node sees you at " << info.observed.to_string()
                << ")" << std::endl;
    };
    events.on_node_request = [&](const proto::Message& ring) {
      on_ring(ring, [&](ByteView bytes) { node->send_message(bytes); }, true);
    };
    events.on_node_indication = on_indication;
    events.on_link_lost = [&](std::string_view reason, uint64_t retry_ms) {
      std::cerr << "tsunagu: link to the node lost (" << reason << "); reconnecting in " << retry_ms << " ms"
                << std::endl;
      // The node held these calls' signalling and ends them for their callers when this link
      // goes (with the node itself, in a cluster); the line ends too, so the next ring, on
      // whichever node the link comes back to, finds this terminal free.
      std::vector<Line*> current;
      for (auto& line : lines) current.push_back(line.get());
      for (Line* line : current)
        if (alive(line))
          line->shell->feed([](CallCore& c, uint64_t now) { c.link_stopped(ClientFailure::none, {}, now); });
    };
    events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
      if (failure != ClientFailure::none) {
        std::cerr << "tsunagu: " << detail << std::endl;
        if (exit_code == 0) exit_code = exit_for_failure(failure);
      }
    };
    NodeClientOptions node_options = options.node;
    node_options.role = sig::link_role::presence;
    node_options.reconnect = !options.once;
    node = std::make_unique<NodeClient>(&loop.loop, node_options, events);
    stop_listening = [&] { node->stop(); };
    hang_up = [&](const call::SendHangup& hangup) {
      node->request(sig::method::hangup, [&](proto::MessageBuilder& b) { add_hangup_attributes(b, hangup); },
                    [](const proto::Message*, std::string_view) {});
    };
    report_path = [&](const call::ReportPath& path) { send_path_report(*node, path); };
    fetch_turn = [&](CallShell* asked_for, const std::string& call_id) {
      node->request(
          sig::method::turn_credentials, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::call_id, call_id); },
          [&, asked_for](const proto::Message* response, std::string_view) {
            for (auto& line : lines)  // unless the call ended meanwhile
              if (line->shell.get() == asked_for)
                return line->shell->feed([&](CallCore& c, uint64_t now) { c.turn_answered(response, now); });
          });
    };
  }
  // A question still open would keep the loop (and the process) alive.
  std::function<void()> on_signal = [&] {
    prompt.reset();
    stop_listening();
  };
  uv_signal_t interrupt{}, terminate{};
  for (uv_signal_t* handle : {&interrupt, &terminate}) {
    uv_signal_init(&loop.loop, handle);
    handle->data = &on_signal;
    uv_signal_start(handle, [](uv_signal_t* h, int) { (*static_cast<std::function<void()>*>(h->data))(); },
                    handle == &interrupt ? SIGINT : SIGTERM);
    uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  }
  if (auto started = node ? node->start() : Expected<void, ClientStartFailure>(); !started) {
    std::cerr << "tsunagu: " << started.error().detail << std::endl;
    exit_code = 1;
  }
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  prompt.reset();
  finished_prompt.reset();
  lines.clear();
  finished_lines.clear();
  answer_timer.close();
  if (audio != nullptr) {  // calls cut short by a signal: the recording is kept all the same
    if (auto finished = audio->finish(); !finished) std::cerr << "tsunagu: " << finished.error() << std::endl;
    audio.reset();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&interrupt), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&terminate), nullptr);
  return exit_code;
}

}  // namespace tsunagu::terminal
