#include "terminal/call_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>

#include "base/files.hpp"
#include "security/lan_identity.hpp"
#include "security/passwords.hpp"
#include "security/sha256_stream.hpp"
#include "terminal/ice_session.hpp"
#include "terminal/lan_ring_server.hpp"
#include "terminal/packet_protection.hpp"
#include "terminal/sealed_stream.hpp"
#include "terminal/voicemail_receiver.hpp"

namespace tsunagu::terminal {
namespace {

namespace sig = tsunagu::proto;

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string attribute_text(const proto::Message& m, uint16_t type) {
  const auto* a = m.find(type);
  return a ? std::string(proto::read_string(*a)) : std::string();
}

uint32_t attribute_u32(const proto::Message& m, uint16_t type, uint32_t fallback) {
  const auto* a = m.find(type);
  return a ? proto::read_u32(*a).value_or(fallback) : fallback;
}

// STUN/TURN settings from a turn_credentials response or a ring.
void apply_servers(const proto::Message& m, IceConfig& config) {
  if (const auto* stun = m.find(sig::attr::stun_server)) config.stun_server = proto::read_xor_address(*stun, m);
  const auto* turn = m.find(sig::attr::turn_server);
  std::string user = attribute_text(m, sig::attr::turn_username), password = attribute_text(m, sig::attr::turn_password);
  if (turn != nullptr && !user.empty()) {
    if (auto server = proto::read_xor_address(*turn, m))
      config.turn = IceConfig::Turn{*server, std::move(user), std::move(password)};
  }
}

int exit_for_end_code(uint32_t code) {
  switch (code) {
    case sig::error::hung_up: return 0;
    case sig::error::busy: return exit_call_busy;
    case sig::error::declined:
    case sig::error::cancelled: return exit_call_declined;
    case sig::error::no_answer: return exit_call_no_answer;
    // Refusals a LAN agent answers for its terminal (see the exit codes in main.cpp).
    case sig::error::unknown_user: return 3;
    case sig::error::offline:
    case sig::error::no_live_lease:
    case sig::error::agent_offline:
    case sig::error::agent_timeout: return 4;
    case sig::error::agent_policy_refused: return 7;
    default: return exit_call_failed;
  }
}

std::string describe(const SelectedPair& pair) {
  return pair.local_type + " " + pair.local.to_string() + " <-> " + pair.remote_type + " " + pair.remote.to_string();
}

// One call's media/data: ICE, sealing, and the chosen mode on top.
class CallEndpoint {
 public:
  CallEndpoint(uv_loop_t* loop, const CallOptions& options, bool caller, bool reliable,
               std::function<void(int)> finished)
      : loop_(loop), options_(options), caller_(caller), reliable_(reliable),
        finished_(std::move(finished)), started_ns_(mono_ns()) {}

  ~CallEndpoint() { release(); }

  // Closes everything that keeps the loop alive: the ICE session (releasing
  // any TURN allocation), the timer and open files.
  void release() {
    if (!read_pending_) close_file_reader();
    if (timer_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
    }
    if (ice_) ice_->close();
  }

  const std::string& call_id() const { return call_id_; }
  void set_call_id(std::string id) { call_id_ = std::move(id); }

  // Creates the ICE session and gathers; `gathered` gets the encoded description.
  bool start_ice(IceConfig config, std::function<void(const std::string&)> gathered) {
    config.controlling = caller_;
    config.reliable = reliable_;
    config.relay_only = options_.relay_only;
    config.local_addresses = options_.ice_addresses;
    IceEvents events;
    events.on_gathered = [this, gathered = std::move(gathered)](const IceDescription& description) {
      auto encoded = encode_ice_description(description);
      if (!encoded) return fail(exit_call_failed, "cannot encode the ICE description: " + std::string(encoded.error()));
      gathered(*encoded);
    };
    events.on_connected = [this](const SelectedPair& pair) {
      connected_ns_ = mono_ns();
      pair_ = pair;
      std::cerr << "connected after " << ms_since_start(connected_ns_) << " ms: " << describe(pair) << std::endl;
      connected_ = true;
      for (const auto& datagram : early_datagrams_) ice_->send(datagram);
      early_datagrams_.clear();
      flush_output();
      if (keys_ready()) begin_mode();
    };
    events.on_selected_pair_changed = [this](const SelectedPair& pair) {
      pair_ = pair;
      std::cerr << "path changed: " << describe(pair) << std::endl;
    };
    events.on_data = [this](ByteView data) { on_ice_data(data); };
    events.on_writable = [this] { flush_output(); };
    events.on_failed = [this](std::string_view reason) { fail(exit_call_failed, "ICE failed: " + std::string(reason)); };
    auto session = IceSession::create(loop_, std::move(config), std::move(events));
    if (!session) {
      fail(exit_call_failed, "ICE: " + session.error());
      return false;
    }
    ice_ = std::move(*session);
    ice_->start();
    ice_deadline();
    return true;
  }

  void set_remote(const std::string& encoded) {
    auto remote = decode_ice_description(encoded);
    if (!remote) return fail(exit_call_failed, "the peer's ICE description is malformed: " + std::string(remote.error()));
    if (ice_) ice_->set_remote(*remote);
  }

  void set_keys(ByteView key) {
    if (key.size() != 32) return fail(exit_call_failed, "the node sent no usable key material");
    CallKeyMaterial material;
    std::copy(key.begin(), key.end(), material.secret.begin());
    material.call_id = call_id_;
    sealer_.emplace(material, caller_ ? Direction::caller_to_callee : Direction::callee_to_caller);
    opener_.emplace(material, caller_ ? Direction::callee_to_caller : Direction::caller_to_callee);
    accepted_ns_ = mono_ns();
    auto early = std::move(early_data_);
    for (const auto& chunk : early) on_ice_data(chunk);
    if (connected_) begin_mode();
  }

  void mark_accepted_time() { accepted_ns_ = mono_ns(); }

  // The call ended from the node's side.
  void ended(uint32_t code, std::string_view reason) {
    if (done_) return;
    if (code == sig::error::hung_up && reliable_ && mode_started_ && receive_fd_ < 0 && !remote_end_) {
      transfer_ok_ = false;
      return fail(exit_call_failed, "the call was hung up before the stream ended: data may be missing");
    }
    if (code == sig::error::hung_up && transfer_ok_.value_or(true))
      finish(exit_code_.value_or(0));
    else
      fail(exit_for_end_code(code), std::string(reason.empty() ? "call ended" : reason));
  }

  uint64_t ms_since_start(uint64_t ns) const { return ns > started_ns_ ? (ns - started_ns_) / 1'000'000 : 0; }

  void write_report() const {
    if (options_.report_file.empty()) return;
    auto ms = [&](uint64_t ns) { return ns == 0 ? std::string("null") : std::to_string(ms_since_start(ns)); };
    std::string json = "{\"call_id\": \"" + call_id_ + "\", \"accepted_ms\": " + ms(accepted_ns_) +
                       ", \"connected_ms\": " + ms(connected_ns_) + ", \"first_byte_ms\": " + ms(first_byte_ns_) +
                       ", \"local_type\": \"" + pair_.local_type + "\", \"remote_type\": \"" + pair_.remote_type +
                       "\", \"local\": \"" + pair_.local.to_string() + "\", \"remote\": \"" +
                       pair_.remote.to_string() + "\", \"bytes_sent\": " + std::to_string(bytes_sent_) +
                       ", \"bytes_received\": " + std::to_string(bytes_received_) +
                       ", \"transfer_seconds\": " + std::to_string(transfer_seconds()) + "}\n";
    if (FILE* f = std::fopen(options_.report_file.c_str(), "w")) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }

 private:
  bool keys_ready() const { return sealer_.has_value(); }
  double transfer_seconds() const {
    uint64_t end = transfer_end_ns_ ? transfer_end_ns_ : mono_ns();
    return connected_ns_ ? static_cast<double>(end - connected_ns_) / 1e9 : 0.0;
  }

  void ice_deadline() {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<CallEndpoint*>(t->data);
          if (!self->connected_)
            self->fail(exit_call_failed, "no media path: " + (self->ice_ ? self->ice_->explain_failure()
                                                                         : std::string("ICE did not connect in time")));
        },
        uint64_t{options_.ice_timeout_s} * 1000, 0);
  }

  // ---- sending ----
  void send_frame(DataFrameType type, ByteView payload) {
    Bytes plain(1 + payload.size());
    plain[0] = std::byte(static_cast<uint8_t>(type));
    std::copy(payload.begin(), payload.end(), plain.begin() + 1);
    Bytes sealed = sealer_->seal(plain);
    if (reliable_) {
      append_stream_frame(output_, sealed);
      flush_output();
    } else if (ice_ && connected_) {
      ice_->send(sealed);  // datagrams: best effort, like the media they carry
    } else if (early_datagrams_.size() < 64) {
      // The controlled side can hear the peer before libnice calls it
      // connected; what it answers then leaves once it is.
      early_datagrams_.push_back(std::move(sealed));
    }
  }

  void flush_output() {
    while (ice_ && output_offset_ < output_.size()) {
      size_t taken = ice_->send(ByteView(output_.data() + output_offset_, output_.size() - output_offset_));
      if (taken == 0) break;  // on_writable resumes
      output_offset_ += taken;
    }
    if (output_offset_ == output_.size()) {
      output_.clear();
      output_offset_ = 0;
    }
    if (output_.size() - output_offset_ < (256u << 10)) read_more_input();
    if (end_after_flush_ && output_.empty()) {
      end_after_flush_ = false;
      after_flushed();
    }
  }

  // ---- receiving ----
  void on_ice_data(ByteView data) {
    if (!keys_ready()) {
      // Packets can beat the node's accepted event; keep a little.
      if (early_bytes_ + data.size() < (1u << 20)) {
        early_data_.emplace_back(data.begin(), data.end());
        early_bytes_ += data.size();
      }
      return;
    }
    if (!reliable_) return on_packet(data);
    stream_.append(data);
    while (!done_) {
      auto next = stream_.next();
      if (!next) return fail(exit_call_failed, "data stream broken: " + std::string(next.error()));
      if (!next->has_value()) break;
      on_packet(**next);
    }
  }

  void on_packet(ByteView sealed) {
    auto opened = opener_->open(sealed);
    if (!opened) {
      if (++rejected_ <= 3) std::cerr << "dropped a packet: " << to_string(opened.error()) << std::endl;
      return;
    }
    const Bytes& plain = *opened;
    if (plain.empty()) return;
    if (first_byte_ns_ == 0) {
      first_byte_ns_ = mono_ns();
      std::cerr << "first byte after " << ms_since_start(first_byte_ns_) << " ms" << std::endl;
    }
    auto type = static_cast<DataFrameType>(std::to_integer<uint8_t>(plain[0]));
    ByteView payload(plain.data() + 1, plain.size() - 1);
    switch (type) {
      case DataFrameType::data: return on_stream_data(payload);
      case DataFrameType::end: return on_stream_end();
      case DataFrameType::end_received:
        local_end_acknowledged_ = true;
        return maybe_pipe_done();
      case DataFrameType::file_header: return on_file_header(payload);
      case DataFrameType::file_result: return on_file_result(payload);
      case DataFrameType::echo_request: return send_frame(DataFrameType::echo_reply, payload);
      case DataFrameType::echo_reply: return on_echo_reply(payload);
    }
  }

  // ---- modes ----
  void begin_mode() {
    if (mode_started_ || done_) return;
    mode_started_ = true;
    if (!caller_) {
      if (reliable_ && options_.receive_directory.empty()) open_stdin();  // listen --pipe: both ways
      return;  // otherwise the callee only answers
    }
    switch (options_.mode) {
      case CallOptions::Mode::pipe: open_stdin(); break;
      case CallOptions::Mode::send_file: open_send_file(); break;
      case CallOptions::Mode::echo_test: start_echo_test(); break;
      case CallOptions::Mode::listen: break;
    }
  }

  void open_stdin() {
    input_fd_ = STDIN_FILENO;
    read_more_input();
  }

  void open_send_file() {
    int fd = ::open(options_.send_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(2, "cannot open " + options_.send_file + ": " + std::strerror(errno));
    struct stat st {};
    fstat(fd, &st);
    input_fd_ = fd;
    sending_file_ = true;
    std::string name = std::filesystem::path(options_.send_file).filename().string();
    Bytes header(8);
    store_be64(header.data(), static_cast<uint64_t>(st.st_size));
    std::string sent_name = name.substr(0, 255);
    auto name_bytes = as_bytes(sent_name);
    header.insert(header.end(), name_bytes.begin(), name_bytes.end());
    send_frame(DataFrameType::file_header, header);
    read_more_input();
  }

  void read_more_input() {
    if (input_fd_ < 0 || read_pending_ || input_done_ || done_) return;
    read_pending_ = true;
    read_request_.data = this;
    read_buffer_.resize(max_stream_chunk);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(read_buffer_.data()), static_cast<unsigned>(read_buffer_.size()));
    uv_fs_read(loop_, &read_request_, input_fd_, &buf, 1, -1, [](uv_fs_t* request) {
      auto* self = static_cast<CallEndpoint*>(request->data);
      ssize_t n = request->result;
      uv_fs_req_cleanup(request);
      self->read_pending_ = false;
      if (self->done_) return self->close_file_reader();
      if (n < 0) return self->fail(exit_call_failed, std::string("reading input: ") + uv_strerror(static_cast<int>(n)));
      if (n == 0) {
        self->input_done_ = true;
        if (self->sending_file_) self->file_digest_ = self->send_hash_.finish();
        self->send_frame(DataFrameType::end, {});
        self->end_after_flush_ = true;
        self->flush_output();
        return;
      }
      ByteView chunk(self->read_buffer_.data(), static_cast<size_t>(n));
      if (self->sending_file_) self->send_hash_.update(chunk);
      self->bytes_sent_ += static_cast<uint64_t>(n);
      self->send_frame(DataFrameType::data, chunk);
    });
  }

  void close_file_reader() {
    if (input_fd_ > STDIN_FILENO) ::close(input_fd_);
    input_fd_ = -1;
    discard_partial_file();
  }

  // A file not received whole is removed, never left behind.
  void discard_partial_file() {
    if (receive_fd_ < 0) return;
    ::close(receive_fd_);
    receive_fd_ = -1;
    ::unlink(partial_path_.c_str());
  }

  void after_flushed() {
    local_end_sent_ = true;
    transfer_end_ns_ = std::max(transfer_end_ns_, mono_ns());
    if (options_.mode == CallOptions::Mode::pipe || (!caller_ && reliable_)) maybe_pipe_done();
  }

  void on_stream_data(ByteView payload) {
    bytes_received_ += payload.size();
    if (refused_file_) return;  // a refused file's bytes go nowhere (not to stdout)
    if (receive_fd_ >= 0) {
      if (bytes_received_ > expected_size_) {
        discard_partial_file();
        refuse_file();
        return fail(exit_call_failed, "the sender sent more than the " + std::to_string(expected_size_) +
                                          " bytes it announced: " + received_path_ + " is not kept");
      }
      receive_hash_.update(payload);
      if (!write_all(receive_fd_, payload)) return fail(exit_call_failed, "writing the received file failed");
      return;
    }
    if (!write_all(STDOUT_FILENO, payload)) return fail(exit_call_failed, "writing to stdout failed");
  }

  static bool write_all(int fd, ByteView data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  void on_stream_end() {
    remote_end_ = true;
    transfer_end_ns_ = std::max(transfer_end_ns_, mono_ns());
    if (receive_fd_ >= 0) return finish_received_file();
    if (refused_file_) return;
    // Everything before the end frame has been written out: say so, so the
    // caller does not hang up with our data still in flight.
    send_frame(DataFrameType::end_received, {});
    maybe_pipe_done();
  }

  void maybe_pipe_done() {
    if (!(remote_end_ && local_end_sent_ && local_end_acknowledged_)) return;
    report_throughput();
    if (caller_) finish(0);  // the caller hangs up; the callee waits for the node's ended
  }

  void report_throughput() const {
    double seconds = transfer_seconds();
    double mbps = seconds > 0 ? static_cast<double>(bytes_sent_ + bytes_received_) * 8 / seconds / 1e6 : 0;
    std::fprintf(stderr, "transferred %llu bytes out, %llu in, in %.3f s (%.1f Mbit/s)\n",
                 static_cast<unsigned long long>(bytes_sent_), static_cast<unsigned long long>(bytes_received_), seconds,
                 mbps);
  }

  void refuse_file() {
    refused_file_ = true;
    Bytes refusal(33, std::byte{0});
    send_frame(DataFrameType::file_result, refusal);
  }

  void on_file_header(ByteView payload) {
    if (options_.receive_directory.empty() || payload.size() < 9) {
      Bytes refusal(33, std::byte{0});
      send_frame(DataFrameType::file_result, refusal);
      return;
    }
    if (receive_fd_ >= 0 || refused_file_) {  // a second header mid-file ends the transfer
      discard_partial_file();
      return refuse_file();
    }
    expected_size_ = load_be64(payload.data());
    std::string name(as_chars(payload.subspan(8)));
    name = std::filesystem::path(name).filename().string();  // no directories from the peer
    if (name.empty() || name == "." || name == "..") name = "received";
    received_path_ = (std::filesystem::path(options_.receive_directory) / name).string();
    // Never over an existing name (a file, or a symlink someone placed there).
    struct stat existing {};
    if (::lstat(received_path_.c_str(), &existing) == 0) {
      refuse_file();
      return fail(exit_call_failed, received_path_ + " already exists: refusing to overwrite it");
    }
    // A fresh NAME.tmp-XXXXXX (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), moved to NAME
    // only once whole.
    auto partial = create_temporary_beside(received_path_);
    if (!partial) {
      refuse_file();
      return fail(exit_call_failed, partial.error());
    }
    receive_fd_ = partial->fd;
    partial_path_ = partial->path;
    std::cerr << "receiving " << name << " (" << expected_size_ << " bytes) into " << options_.receive_directory
              << std::endl;
  }

  void finish_received_file() {
    Bytes digest = receive_hash_.finish();
    bool ok = ::fsync(receive_fd_) == 0 && bytes_received_ == expected_size_;
    ::close(receive_fd_);
    receive_fd_ = -1;
    // RENAME_NOREPLACE: a name that appeared meanwhile is not overwritten either.
    if (ok) ok = ::renameat2(AT_FDCWD, partial_path_.c_str(), AT_FDCWD, received_path_.c_str(), RENAME_NOREPLACE) == 0;
    if (!ok) ::unlink(partial_path_.c_str());
    Bytes result(1);
    result[0] = std::byte(ok ? 1 : 0);
    result.insert(result.end(), digest.begin(), digest.end());
    send_frame(DataFrameType::file_result, result);
    std::cerr << (ok ? "stored " : "failed to store ") << received_path_ << " sha256 " << to_hex(digest) << std::endl;
  }

  void on_file_result(ByteView payload) {
    bool stored = payload.size() == 33 && payload[0] == std::byte{1};
    bool match = stored && std::equal(payload.begin() + 1, payload.end(), file_digest_.begin(), file_digest_.end());
    report_throughput();
    if (match) {
      std::cerr << "delivered " << options_.send_file << ": the receiver's SHA-256 matches (" << to_hex(file_digest_)
                << ")" << std::endl;
      finish(0);
    } else {
      transfer_ok_ = false;
      fail(exit_call_failed, stored ? "the receiver's SHA-256 does not match" : "the receiver did not store the file");
    }
  }

  // ---- echo test (datagrams) ----
  void start_echo_test() {
    echo_sent_ = 0;
    uv_timer_stop(timer_);
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<CallEndpoint*>(t->data);
          if (self->echo_sent_ < self->options_.echo_count) {
            Bytes payload(12);
            store_be32(payload.data(), self->echo_sent_++);
            store_be64(payload.data() + 4, mono_ns());
            self->send_frame(DataFrameType::echo_request, payload);
          } else if (++self->echo_grace_ticks_ > 50) {  // 1 s for stragglers
            self->report_echo();
          }
        },
        0, 20);
  }

  void on_echo_reply(ByteView payload) {
    if (payload.size() != 12) return;
    uint64_t sent = load_be64(payload.data() + 4);
    rtts_ms_.push_back(static_cast<double>(mono_ns() - sent) / 1e6);
    if (rtts_ms_.size() == options_.echo_count) report_echo();
  }

  void report_echo() {
    if (done_) return;
    std::vector<double> sorted = rtts_ms_;
    std::sort(sorted.begin(), sorted.end());
    double jitter = 0;
    for (size_t i = 1; i < rtts_ms_.size(); ++i) jitter += std::abs(rtts_ms_[i] - rtts_ms_[i - 1]);
    if (rtts_ms_.size() > 1) jitter /= static_cast<double>(rtts_ms_.size() - 1);
    double loss = 100.0 * (1.0 - static_cast<double>(rtts_ms_.size()) / options_.echo_count);
    auto at = [&](double q) { return sorted.empty() ? 0.0 : sorted[static_cast<size_t>(q * (sorted.size() - 1))]; };
    std::printf("echo test: %u sent, %zu returned, loss %.1f%%, RTT min %.3f ms, median %.3f ms, max %.3f ms, jitter %.3f ms\n",
                options_.echo_count, rtts_ms_.size(), loss, at(0), at(0.5), at(1), jitter);
    std::fflush(stdout);
    finish(rtts_ms_.empty() ? exit_call_failed : 0);
  }

 public:
  void fail(int code, const std::string& why) {
    if (done_) return;
    std::cerr << "tsunagu: " << why << std::endl;
    finish(code);
  }
  void finish(int code) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    write_report();
    release();
    finished_(code);
  }
  bool done() const { return done_; }

 private:
  uv_loop_t* loop_;
  const CallOptions& options_;
  bool caller_;
  bool reliable_;
  std::function<void(int)> finished_;
  std::string call_id_;
  std::unique_ptr<IceSession> ice_;
  std::optional<PacketSealer> sealer_;
  std::optional<PacketOpener> opener_;
  SealedStreamReader stream_;
  std::vector<Bytes> early_data_;
  std::vector<Bytes> early_datagrams_;
  size_t early_bytes_ = 0;
  Bytes output_;
  size_t output_offset_ = 0;
  bool connected_ = false, mode_started_ = false, done_ = false;
  std::optional<int> exit_code_;
  std::optional<bool> transfer_ok_;
  SelectedPair pair_;
  uint64_t started_ns_, accepted_ns_ = 0, connected_ns_ = 0, first_byte_ns_ = 0, transfer_end_ns_ = 0;
  uint64_t bytes_sent_ = 0, bytes_received_ = 0;
  uint64_t rejected_ = 0;
  uv_timer_t* timer_ = nullptr;
  // input (stdin or the file to send)
  int input_fd_ = -1;
  bool read_pending_ = false, input_done_ = false, sending_file_ = false, end_after_flush_ = false;
  bool local_end_sent_ = false, remote_end_ = false, local_end_acknowledged_ = false;
  uv_fs_t read_request_{};
  Bytes read_buffer_;
  security::Sha256Stream send_hash_;
  Bytes file_digest_;
  // receiving a file
  int receive_fd_ = -1;
  bool refused_file_ = false;
  uint64_t expected_size_ = 0;
  std::string received_path_, partial_path_;
  security::Sha256Stream receive_hash_;
  // echo test
  unsigned echo_sent_ = 0, echo_grace_ticks_ = 0;
  std::vector<double> rtts_ms_;
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

int run_call(const CallOptions& options) {
  Loop loop;
  int exit_code = 0;
  bool reliable = options.mode != CallOptions::Mode::echo_test;
  std::unique_ptr<CallEndpoint> endpoint;
  NodeClient* node_ptr = nullptr;
  auto hang_up_and_stop = [&](int code) {
    exit_code = code;
    if (node_ptr != nullptr && endpoint && !endpoint->call_id().empty()) {
      std::string id = endpoint->call_id();
      node_ptr->request(
          sig::method::hangup, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::call_id, id); },
          [&](const proto::Message*, std::string_view) { node_ptr->stop(); });
    } else if (node_ptr != nullptr) {
      node_ptr->stop();
    }
  };

  NodeClientEvents events;
  // The node's refusal of a call request: the message and the exit code.
  auto refused = [&](const proto::Message& answer) {
    const auto* code = answer.find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    uint16_t number = parsed ? parsed->code : 0;
    int exit = number == sig::error::offline || number == sig::error::agent_offline ? 4
               : number == sig::error::unknown_user                                 ? 3
               : number == sig::error::busy                                         ? exit_call_busy
                                                                                    : 7;
    return std::pair{exit, options.callee + ": " + (parsed ? std::string(parsed->reason) : "refused")};
  };
  auto place_call = [&](const std::string& offer) {
    node_ptr->request(
        sig::method::call,
        [&](proto::MessageBuilder& b) {
          b.add_string(sig::attr::call_id, endpoint->call_id());
          b.add_string(sig::attr::user_id, options.callee);
          b.add_string(sig::attr::ice_description, offer);
        },
        [&](const proto::Message* answer, std::string_view call_error) {
          if (answer == nullptr) return endpoint->fail(1, "call: " + std::string(call_error));
          if (answer->message_class == proto::MessageClass::error) {
            auto [exit, why] = refused(*answer);
            return endpoint->fail(exit, why);
          }
          // A LAN extension is rung by its agent: it may still turn out unknown or unreachable.
          const bool via_agent = attribute_u32(*answer, sig::attr::call_state, sig::call_state::ringing) ==
                                 sig::call_state::routed_to_agent;
          std::cerr << (via_agent ? "calling " : "ringing ") << options.callee
                    << (via_agent ? " through its LAN agent" : "") << " (call " << endpoint->call_id() << ")"
                    << std::endl;
        });
  };
  // First the call is prepared: the node checks the callee can be rung and
  // hands out this call's STUN/TURN settings; then ICE gathers with them and
  // the offer rings the callee.
  events.on_logged_in = [&](const LoginInfo&) {
    node_ptr->request(
        sig::method::call,
        [&](proto::MessageBuilder& b) {
          b.add_string(sig::attr::user_id, options.callee);
          b.add_u32(sig::attr::call_media, reliable ? 1 : 0);
        },
        [&](const proto::Message* answer, std::string_view error) {
          if (answer == nullptr) {
            std::cerr << "tsunagu: call: " << error << std::endl;
            exit_code = exit_call_failed;
            node_ptr->stop();
            return;
          }
          if (answer->message_class == proto::MessageClass::error) {
            auto [exit, why] = refused(*answer);
            std::cerr << "tsunagu: " << why << std::endl;
            exit_code = exit;
            node_ptr->stop();
            return;
          }
          endpoint = std::make_unique<CallEndpoint>(&loop.loop, options, true, reliable, hang_up_and_stop);
          endpoint->set_call_id(attribute_text(*answer, sig::attr::call_id));
          IceConfig config;
          apply_servers(*answer, config);
          if (options.relay_only && !config.turn)
            return endpoint->fail(exit_call_failed, "--relay-only, but the node hands out no TURN server");
          endpoint->start_ice(config, place_call);
        });
  };
  events.on_node_indication = [&](const proto::Message& m) {
    if (!endpoint || m.method != sig::method::call_event) return;
    if (attribute_text(m, sig::attr::call_id) != endpoint->call_id()) return;
    uint32_t state = attribute_u32(m, sig::attr::call_state, sig::call_state::ended);
    if (state == sig::call_state::accepted) {
      std::cerr << "accepted after " << endpoint->ms_since_start(mono_ns()) << " ms" << std::endl;
      const auto* key = m.find(sig::attr::key_material);
      endpoint->set_keys(key ? key->value : ByteView{});
      endpoint->set_remote(attribute_text(m, sig::attr::ice_description));
    } else if (state == sig::call_state::ended) {
      endpoint->ended(attribute_u32(m, sig::attr::end_code, sig::error::link_lost), attribute_text(m, sig::attr::notice_reason));
    }
  };
  events.on_node_request = [&](const proto::Message& m) {
    // A query link is never rung; refuse anything else the node might ask.
    auto refusal = proto::MessageBuilder::response_to(m, proto::MessageClass::error);
    refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
    refusal.add_error(sig::error::busy, "Busy");
    node_ptr->send_message(refusal.finish());
  };
  events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
    if (failure != ClientFailure::none && exit_code == 0) {
      std::cerr << "tsunagu: " << detail << std::endl;
      exit_code = failure == ClientFailure::unauthenticated ? 5 : 1;
    }
    if (endpoint && !endpoint->done()) endpoint->fail(exit_call_failed, "link to the node lost");
  };
  NodeClientOptions node_options = options.node;
  node_options.role = sig::link_role::query;
  NodeClient node(&loop.loop, node_options, events);
  node_ptr = &node;
  uv_signal_t interrupt{};
  uv_signal_init(&loop.loop, &interrupt);
  interrupt.data = &hang_up_and_stop;
  uv_signal_start(&interrupt, [](uv_signal_t* h, int) {
    (*static_cast<std::function<void(int)>*>(h->data))(130);
  }, SIGINT);
  uv_unref(reinterpret_cast<uv_handle_t*>(&interrupt));
  if (auto started = node.start(); !started) {
    std::cerr << "tsunagu: " << started.error().detail << std::endl;
    exit_code = 1;
  }
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  endpoint.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&interrupt), nullptr);
  return exit_code;
}

int run_listen(const CallOptions& options) {
  Loop loop;
  int exit_code = 0;
  std::unique_ptr<CallEndpoint> endpoint;
  std::unique_ptr<CallEndpoint> finished_endpoint;  // destroyed outside its own callbacks
  std::function<void()> stop_listening;  // the node link, or the LAN server
  auto accepts = [&](const std::string& caller) {
    for (const auto& allowed : options.auto_accept_from)
      if (allowed == "*" || allowed == caller) return true;
    if (!isatty(STDIN_FILENO) || options.mode == CallOptions::Mode::pipe) return false;
    std::cerr << "incoming call from " << caller << " - accept? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
  };
  auto call_over = [&](int code) {
    exit_code = code;
    if (endpoint) finished_endpoint = std::move(endpoint);
    if (options.once) stop_listening();
  };

  // A ring, from the node or (LAN mode) from the agent; `reply` answers it on
  // the link it came from. From the node, accepting starts with this call's
  // TURN credentials (`fetch_turn`); the agent's ring carries them.
  using TurnAnswer = std::function<void(const proto::Message* response)>;
  using FetchTurn = std::function<void(const std::string& call_id, TurnAnswer)>;
  std::optional<VoicemailReceiver> mailbox;
  if (!options.lan_mailbox.empty()) mailbox.emplace(options.lan_mailbox);
  auto on_ring = [&](const proto::Message& ring, std::function<void(ByteView)> reply, FetchTurn fetch_turn) {
    if (ring.method == sig::method::voicemail_deliver && ring.message_class == proto::MessageClass::request) {
      if (!mailbox) {
        auto refusal = proto::MessageBuilder::response_to(ring, proto::MessageClass::error);
        refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
        refusal.add_error(sig::error::forbidden, "Forbidden: this terminal keeps no mailbox (listen --mailbox DIR)");
        return reply(refusal.finish());
      }
      std::string saved;
      reply(mailbox->handle(ring, &saved));
      if (!saved.empty())
        std::cerr << "voicemail from " << attribute_text(ring, sig::attr::caller_id) << " saved: " << saved << std::endl;
      return;
    }
    if (ring.method != sig::method::ring) return;
    auto refuse = [&](uint16_t code, std::string_view reason) {
      auto refusal = proto::MessageBuilder::response_to(ring, proto::MessageClass::error);
      refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
      refusal.add_error(code, reason);
      reply(refusal.finish());
    };
    std::string caller = attribute_text(ring, sig::attr::caller_id);
    if (endpoint) return refuse(sig::error::busy, "Busy");  // one call at a time in the CLI
    if (!accepts(caller)) {
      std::cerr << "declined a call from " << caller << std::endl;
      return refuse(sig::error::declined, "Declined");
    }
    bool reliable = attribute_u32(ring, sig::attr::call_media, 0) == 1;
    std::cerr << "accepting a call from " << caller << (reliable ? " (data stream)" : " (datagrams)") << std::endl;
    IceConfig config;
    apply_servers(ring, config);
    std::string offer = attribute_text(ring, sig::attr::ice_description);
    proto::TransactionId ring_id = ring.transaction_id;
    std::string call_id = attribute_text(ring, sig::attr::call_id);
    endpoint = std::make_unique<CallEndpoint>(&loop.loop, options, false, reliable, call_over);
    endpoint->set_call_id(call_id);
    auto answer_with = [&, ring_id, reply, offer](IceConfig servers) {
      // The response must answer this ring's transaction, after gathering.
      bool started = endpoint->start_ice(servers, [ring_id, reply](const std::string& answer) {
        proto::MessageBuilder accept(proto::MessageClass::success, sig::method::ring, ring_id);
        accept.add_u32(sig::attr::protocol_version, sig::protocol_version);
        accept.add_string(sig::attr::ice_description, answer);
        reply(accept.finish());
      });
      if (started) endpoint->set_remote(offer);
    };
    if (!fetch_turn) return answer_with(config);
    CallEndpoint* asked_for = endpoint.get();
    fetch_turn(call_id, [&, asked_for, config, answer_with](const proto::Message* response) {
      if (endpoint.get() != asked_for) return;  // the call ended meanwhile
      IceConfig servers = config;
      if (response != nullptr && response->message_class == proto::MessageClass::success)
        apply_servers(*response, servers);
      else
        std::cerr << "tsunagu: the node handed out no TURN credentials for this call; answering without a relay"
                  << std::endl;
      answer_with(servers);
    });
  };
  auto on_indication = [&](const proto::Message& m) {
    if (!endpoint || m.method != sig::method::call_event) return;
    if (attribute_text(m, sig::attr::call_id) != endpoint->call_id()) return;
    uint32_t state = attribute_u32(m, sig::attr::call_state, sig::call_state::ended);
    if (state == sig::call_state::accepted) {
      const auto* key = m.find(sig::attr::key_material);
      endpoint->set_keys(key ? key->value : ByteView{});
    } else if (state == sig::call_state::ended) {
      uint32_t code = attribute_u32(m, sig::attr::end_code, sig::error::link_lost);
      std::cerr << "call ended: " << attribute_text(m, sig::attr::notice_reason) << std::endl;
      endpoint->ended(code == sig::error::cancelled || code == sig::error::no_answer ? sig::error::hung_up : code, {});
    }
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
      on_ring(ring, std::move(reply), nullptr);
    };
    events.on_indication = on_indication;
    auto server = LanRingServer::start(&loop.loop, lan_options, std::move(events));
    if (!server) {
      std::cerr << "tsunagu: --lan: " << server.error() << std::endl;
      return 1;
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
      on_ring(
          ring, [&](ByteView bytes) { node->send_message(bytes); },
          [&](const std::string& call_id, TurnAnswer answer) {
            node->request(
                sig::method::turn_credentials,
                [&](proto::MessageBuilder& b) { b.add_string(sig::attr::call_id, call_id); },
                [answer](const proto::Message* response, std::string_view) { answer(response); });
          });
    };
    events.on_node_indication = on_indication;
    events.on_link_lost = [](std::string_view reason, uint64_t retry_ms) {
      std::cerr << "tsunagu: link to the node lost (" << reason << "); reconnecting in " << retry_ms << " ms"
                << std::endl;
    };
    events.on_stopped = [&](ClientFailure failure, std::string_view detail) {
      if (failure != ClientFailure::none) {
        std::cerr << "tsunagu: " << detail << std::endl;
        if (exit_code == 0) exit_code = failure == ClientFailure::unauthenticated ? 5 : 1;
      }
    };
    NodeClientOptions node_options = options.node;
    node_options.role = sig::link_role::presence;
    node_options.reconnect = !options.once;
    node = std::make_unique<NodeClient>(&loop.loop, node_options, events);
    stop_listening = [&] { node->stop(); };
  }
  uv_signal_t interrupt{}, terminate{};
  for (uv_signal_t* handle : {&interrupt, &terminate}) {
    uv_signal_init(&loop.loop, handle);
    handle->data = &stop_listening;
    uv_signal_start(handle, [](uv_signal_t* h, int) { (*static_cast<std::function<void()>*>(h->data))(); },
                    handle == &interrupt ? SIGINT : SIGTERM);
    uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  }
  if (auto started = node ? node->start() : Expected<void, ClientStartFailure>(); !started) {
    std::cerr << "tsunagu: " << started.error().detail << std::endl;
    exit_code = 1;
  }
  uv_run(&loop.loop, UV_RUN_DEFAULT);
  endpoint.reset();
  finished_endpoint.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&interrupt), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&terminate), nullptr);
  return exit_code;
}

}  // namespace tsunagu::terminal
