#include "terminal/transfer_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <array>
#include <filesystem>

#include "media/rtp.hpp"
#include "terminal/cli_common.hpp"

namespace tsunagu::terminal {

double TransferStats::seconds(uint64_t now_ns) const {
  uint64_t end = transfer_end_ns != 0 ? transfer_end_ns : now_ns;
  return connected_ns != 0 && end > connected_ns ? static_cast<double>(end - connected_ns) / 1e9 : 0.0;
}

TransferCore::TransferCore(TransferConfig config, TransferOutput& output) : config_(config), output_(output) {}

bool TransferCore::keys(ByteView secret, const std::string& call_id, uint64_t now_ns) {
  if (sealer_ || done_) return true;
  if (secret.size() != 32) return false;
  CallKeyMaterial material;
  std::copy(secret.begin(), secret.end(), material.secret.begin());
  material.call_id = call_id;
  sealer_.emplace(material, config_.caller ? Direction::caller_to_callee : Direction::callee_to_caller);
  opener_.emplace(material, config_.caller ? Direction::callee_to_caller : Direction::caller_to_callee);
  auto early = std::move(early_data_);
  early_data_.clear();
  for (const auto& chunk : early) data(chunk, now_ns);
  if (connected_) begin(now_ns);
  return true;
}

void TransferCore::use_plain_media(uint8_t opus_payload_type, uint8_t event_payload_type) {
  if (started_ || !config_.voice) return;
  config_.plain_media = true;
  config_.voice->media.opus_payload_type = opus_payload_type;
  config_.voice->media.event_payload_type = event_payload_type;
}

void TransferCore::connected(uint64_t now_ns) {
  if (connected_) return;
  connected_ = true;
  stats_.connected_ns = now_ns;
  for (auto& datagram : early_datagrams_) actions_.push_back(transfer::SendDatagram{std::move(datagram)});
  early_datagrams_.clear();
  if (sealer_ || config_.plain_media) begin(now_ns);
}

void TransferCore::begin(uint64_t now_ns) {
  if (started_ || done_) return;
  started_ = true;
  if (config_.voice) return start_voice(now_ns);
  if (!config_.caller) {
    // listen over a data stream without --recv: a pipe both ways.
    if (config_.reliable && config_.receive_directory.empty()) actions_.push_back(transfer::StartInput{});
    return;  // otherwise the callee only answers
  }
  switch (config_.mode) {
    case TransferMode::pipe:
    case TransferMode::send_file: actions_.push_back(transfer::StartInput{}); break;
    case TransferMode::echo_test: next_echo_ns_ = now_ns; break;
    case TransferMode::answer:
    case TransferMode::voice: break;
  }
}

// ------------------------------------------------------------------- sending

void TransferCore::send_frame(DataFrameType type, ByteView payload) {
  if (config_.plain_media) {
    if (type == DataFrameType::media && connected_) actions_.push_back(transfer::SendDatagram{Bytes(payload.begin(), payload.end())});
    return;
  }
  if (!sealer_) return;
  Bytes plain(1 + payload.size());
  plain[0] = std::byte(static_cast<uint8_t>(type));
  std::copy(payload.begin(), payload.end(), plain.begin() + 1);
  Bytes sealed = sealer_->seal(plain);
  if (config_.reliable) {
    Bytes framed;
    append_stream_frame(framed, sealed);
    actions_.push_back(transfer::SendStream{std::move(framed)});
  } else if (connected_) {
    actions_.push_back(transfer::SendDatagram{std::move(sealed)});  // best effort, like the media they carry
  } else if (early_datagrams_.size() < max_early_datagrams) {
    // The controlled side can hear the peer before libnice calls it
    // connected; what it answers then leaves once it is.
    early_datagrams_.push_back(std::move(sealed));
  }
}

void TransferCore::file_opened(const std::string& path, uint64_t size, uint64_t /*now_ns*/) {
  if (done_) return;
  sending_file_ = true;
  send_name_ = path;
  Bytes header(8);
  store_be64(header.data(), size);
  std::string sent_name = std::filesystem::path(path).filename().string().substr(0, 255);
  auto name_bytes = as_bytes(sent_name);
  header.insert(header.end(), name_bytes.begin(), name_bytes.end());
  send_frame(DataFrameType::file_header, header);
}

void TransferCore::input(ByteView chunk, uint64_t /*now_ns*/) {
  if (done_ || input_done_) return;
  if (sending_file_) send_hash_->update(chunk);
  stats_.bytes_sent += chunk.size();
  send_frame(DataFrameType::data, chunk);
}

void TransferCore::input_end(uint64_t /*now_ns*/) {
  if (done_ || input_done_) return;
  input_done_ = true;
  if (sending_file_) file_digest_ = send_hash_->finish();
  send_frame(DataFrameType::end, {});
  end_pending_ = true;
}

void TransferCore::input_failed(int exit_code, const std::string& why) { fail(exit_code, why); }

void TransferCore::output_drained(uint64_t now_ns) {
  if (!end_pending_ || done_) return;
  end_pending_ = false;
  local_end_sent_ = true;
  stats_.transfer_end_ns = std::max(stats_.transfer_end_ns, now_ns);
  if (config_.mode == TransferMode::pipe || (!config_.caller && config_.reliable)) maybe_pipe_done(now_ns);
}

// ----------------------------------------------------------------- receiving

void TransferCore::data(ByteView bytes, uint64_t now_ns) {
  last_now_ns_ = now_ns;
  if (done_) return;
  if (!opener_) {
    // Packets can beat the node's accepted event; keep a little.
    if (early_bytes_ + bytes.size() < max_early_bytes) {
      early_data_.emplace_back(bytes.begin(), bytes.end());
      early_bytes_ += bytes.size();
    }
    return;
  }
  if (!config_.reliable) return on_packet(bytes, now_ns);
  stream_.append(bytes);
  while (!done_) {
    auto next = stream_.next();
    if (!next) return fail(exit_call_failed, "data stream broken: " + std::string(next.error()));
    if (!next->has_value()) break;
    on_packet(**next, now_ns);
  }
}

void TransferCore::on_packet(ByteView sealed, uint64_t now_ns) {
  auto opened = opener_->open(sealed);
  if (!opened) {
    if (++rejected_ <= 3) print("dropped a packet: " + std::string(to_string(opened.error())));
    return;
  }
  const Bytes& plain = *opened;
  if (plain.empty()) return;
  note_first_byte(now_ns);
  auto type = static_cast<DataFrameType>(std::to_integer<uint8_t>(plain[0]));
  ByteView payload(plain.data() + 1, plain.size() - 1);
  switch (type) {
    case DataFrameType::data: return on_stream_data(payload);
    case DataFrameType::end: return on_stream_end(now_ns);
    case DataFrameType::end_received:
      local_end_acknowledged_ = true;
      return maybe_pipe_done(now_ns);
    case DataFrameType::file_header: return on_file_header(payload);
    case DataFrameType::file_result: return on_file_result(payload, now_ns);
    case DataFrameType::echo_request: return send_frame(DataFrameType::echo_reply, payload);
    case DataFrameType::echo_reply: return on_echo_reply(payload, now_ns);
    case DataFrameType::media: return on_media(payload, now_ns);
    case DataFrameType::hold: return on_hold(payload, now_ns);
  }
}

void TransferCore::note_first_byte(uint64_t now_ns) {
  if (stats_.first_byte_ns != 0) return;
  stats_.first_byte_ns = now_ns;
  uint64_t ms = now_ns > config_.call_started_ns ? (now_ns - config_.call_started_ns) / 1'000'000 : 0;
  print("first byte after " + std::to_string(ms) + " ms");
}

void TransferCore::media_packet(ByteView packet, uint64_t now_ns) {
  last_now_ns_ = now_ns;
  if (done_ || !config_.plain_media || packet.empty()) return;
  note_first_byte(now_ns);
  on_media(packet, now_ns);
}

void TransferCore::on_stream_data(ByteView payload) {
  stats_.bytes_received += payload.size();
  if (refused_file_) return;  // a refused file's bytes go nowhere (not to stdout)
  if (receiving_file_) {
    if (stats_.bytes_received > expected_size_) {
      discard_partial_file();
      refuse_file();
      return fail_after_refusal(exit_call_failed, "the sender sent more than the " + std::to_string(expected_size_) +
                                                      " bytes it announced: " + received_path_ + " is not kept");
    }
    receive_hash_->update(payload);
    if (!output_.write_file(payload)) return fail(exit_call_failed, "writing the received file failed");
    return;
  }
  if (!output_.write_stdout(payload)) return fail(exit_call_failed, "writing to stdout failed");
}

void TransferCore::on_stream_end(uint64_t now_ns) {
  remote_end_ = true;
  stats_.transfer_end_ns = std::max(stats_.transfer_end_ns, now_ns);
  if (receiving_file_) return finish_received_file();
  if (refused_file_) return;
  // Everything before the end frame has been written out: say so, so the
  // caller does not hang up with our data still in flight.
  send_frame(DataFrameType::end_received, {});
  maybe_pipe_done(now_ns);
}

void TransferCore::maybe_pipe_done(uint64_t now_ns) {
  if (!(remote_end_ && local_end_sent_ && local_end_acknowledged_)) return;
  report_throughput(now_ns);
  if (config_.caller) finish(0);  // the caller hangs up; the callee waits for the node's ended
}

void TransferCore::peer_hung_up(uint64_t now_ns) {
  if (!done_ && !throughput_reported_ && !receiving_file_ && remote_end_ && local_end_sent_) report_throughput(now_ns);
}

void TransferCore::report_throughput(uint64_t now_ns) {
  throughput_reported_ = true;
  double seconds = stats_.seconds(now_ns);
  double mbps =
      seconds > 0 ? static_cast<double>(stats_.bytes_sent + stats_.bytes_received) * 8 / seconds / 1e6 : 0;
  char line[160];
  std::snprintf(line, sizeof line, "transferred %llu bytes out, %llu in, in %.3f s (%.1f Mbit/s)",
                static_cast<unsigned long long>(stats_.bytes_sent),
                static_cast<unsigned long long>(stats_.bytes_received), seconds, mbps);
  print(line);
}

void TransferCore::refuse_file() {
  refused_file_ = true;
  send_frame(DataFrameType::file_result, Bytes(33, std::byte{0}));
}

void TransferCore::discard_partial_file() {
  if (!receiving_file_) return;
  receiving_file_ = false;
  output_.discard_file();
}

void TransferCore::on_file_header(ByteView payload) {
  if (config_.receive_directory.empty() || payload.size() < 9) {
    send_frame(DataFrameType::file_result, Bytes(33, std::byte{0}));
    return;
  }
  if (receiving_file_ || refused_file_) {  // a second header mid-file ends the transfer
    discard_partial_file();
    return refuse_file();
  }
  expected_size_ = load_be64(payload.data());
  std::string name(as_chars(payload.subspan(8)));
  name = std::filesystem::path(name).filename().string();  // no directories from the peer
  if (name.empty() || name == "." || name == "..") name = "received";
  auto opened = output_.open_file(name);
  if (!opened) {
    refuse_file();
    return fail_after_refusal(exit_call_failed, opened.error());
  }
  receiving_file_ = true;
  received_path_ = *opened;
  print("receiving " + name + " (" + std::to_string(expected_size_) + " bytes) into " + config_.receive_directory);
}

void TransferCore::finish_received_file() {
  Bytes digest = receive_hash_->finish();
  receiving_file_ = false;
  bool ok = stats_.bytes_received == expected_size_;
  if (ok) {
    ok = output_.commit_file();
  } else {
    output_.discard_file();
  }
  Bytes result(1);
  result[0] = std::byte(ok ? 1 : 0);
  result.insert(result.end(), digest.begin(), digest.end());
  send_frame(DataFrameType::file_result, result);
  print((ok ? "stored " : "failed to store ") + received_path_ + " sha256 " + to_hex(digest));
}

void TransferCore::on_file_result(ByteView payload, uint64_t now_ns) {
  bool stored = payload.size() == 33 && payload[0] == std::byte{1};
  bool match = stored && std::equal(payload.begin() + 1, payload.end(), file_digest_.begin(), file_digest_.end());
  report_throughput(now_ns);
  if (match) {
    print("delivered " + send_name_ + ": the receiver's SHA-256 matches (" + to_hex(file_digest_) + ")");
    finish(0);
  } else {
    fail(exit_call_failed, stored ? "the receiver's SHA-256 does not match" : "the receiver did not store the file");
  }
}

// ----------------------------------------------------------------- echo test

void TransferCore::tick(uint64_t now_ns) {
  if (!done_ && refusal_ && now_ns >= refusal_->deadline_ns) return finish(refusal_->exit_code);
  if (done_ || !next_echo_ns_ || now_ns < *next_echo_ns_) return;
  next_echo_ns_ = now_ns + echo_interval_ns;
  if (echo_sent_ < config_.echo_count) {
    Bytes payload(12);
    store_be32(payload.data(), echo_sent_++);
    store_be64(payload.data() + 4, now_ns);
    send_frame(DataFrameType::echo_request, payload);
  } else if (++echo_ticks_after_ > echo_grace_ticks) {
    report_echo();
  }
}

void TransferCore::on_echo_reply(ByteView payload, uint64_t now_ns) {
  if (payload.size() != 12) return;
  uint64_t sent = load_be64(payload.data() + 4);
  rtts_ms_.push_back(static_cast<double>(now_ns - sent) / 1e6);
  if (rtts_ms_.size() == config_.echo_count) report_echo();
}

void TransferCore::report_echo() {
  if (done_) return;
  std::vector<double> sorted = rtts_ms_;
  std::sort(sorted.begin(), sorted.end());
  double jitter = 0;
  for (size_t i = 1; i < rtts_ms_.size(); ++i) jitter += std::abs(rtts_ms_[i] - rtts_ms_[i - 1]);
  if (rtts_ms_.size() > 1) jitter /= static_cast<double>(rtts_ms_.size() - 1);
  double loss = 100.0 * (1.0 - static_cast<double>(rtts_ms_.size()) / config_.echo_count);
  auto at = [&](double q) { return sorted.empty() ? 0.0 : sorted[static_cast<size_t>(q * (sorted.size() - 1))]; };
  char line[200];
  std::snprintf(line, sizeof line,
                "echo test: %u sent, %zu returned, loss %.1f%%, RTT min %.3f ms, median %.3f ms, max %.3f ms, "
                "jitter %.3f ms",
                config_.echo_count, rtts_ms_.size(), loss, at(0), at(0.5), at(1), jitter);
  print(line, true);
  finish(rtts_ms_.empty() ? exit_call_failed : 0);
}

// --------------------------------------------------------------------- voice

void TransferCore::start_voice(uint64_t now_ns) {
  auto session = media::VoiceSession::create(config_.voice->media);
  if (!session) return fail(exit_call_failed, "audio: " + session.error());
  voice_ = std::move(*session);
  voice_started_ns_ = now_ns;
  actions_.emplace_back(std::in_place_type<transfer::StartAudio>);
}

void TransferCore::on_media(ByteView payload, uint64_t now_ns) {
  // Voice from a peer that held us, and no hold frame for longer than two of
  // its repeats: its resume frames were all lost, and it talks again.
  if (voice_ && peer_held_ && !media::is_rtcp(payload) && now_ns > last_hold_signal_ns_ + hold_lapse_ns)
    set_peer_held(false);
  if (voice_) return voice_->received(payload, now_ns);
  if (++media_ignored_ == 1)
    print("the other side is talking, but this end has no audio (--audio, or --audio-out FILE)");
}

void TransferCore::voice_input_end(uint64_t /*now_ns*/) { voice_input_done_ = true; }

void TransferCore::voice_key(char key) {
  if (!voice_ || done_) return;
  if (key == 'm' || key == 'M') {
    muted_ = !muted_;
    voice_->set_muted(muted_);
    return print(muted_ ? "muted (m: unmute)" : "unmuted");
  }
  if (key == 'h' || key == 'H') return set_hold(!held_);
  if (voice_->send_digits(std::string_view(&key, 1))) print(std::string("sending ") + key);
}

// ---------------------------------------------------------------------- hold

void TransferCore::set_hold(bool held) {
  if (!voice_ || done_ || held == held_) return;
  held_ = held;
  uint64_t now_ms = voice_ms(voice_now_ns_);
  if (held) {
    hold_frames_ = 0;
    resume_signals_left_ = 0;
    if (hold_stats_.periods.size() < max_hold_periods) {
      hold_stats_.periods.push_back(HoldPeriod{true, now_ms, now_ms});
      my_period_ = hold_stats_.periods.size() - 1;
    }
  } else {
    resume_signals_left_ = resume_repeats - 1;  // one now, the others on the next frames
    if (my_period_) hold_stats_.periods[*my_period_].end_ms = now_ms;
    my_period_.reset();
  }
  send_hold_signal(held);
  apply_media_hold();
  print(held ? "on hold: nothing is sent either way, the peer hears the hold tone (h: resume)" : "resumed");
}

void TransferCore::set_waiting_tone(bool on) {
  if (on && !waiting_tone_on_) waiting_tone_.restart();
  waiting_tone_on_ = on;
}

void TransferCore::send_hold_signal(bool held) {
  std::array<std::byte, 1> state{std::byte{held ? uint8_t{1} : uint8_t{0}}};
  ++hold_stats_.hold_signals_sent;
  send_frame(DataFrameType::hold, state);
}

void TransferCore::on_hold(ByteView payload, uint64_t now_ns) {
  if (payload.size() != 1 || !voice_) return;
  ++hold_stats_.hold_signals_received;
  last_hold_signal_ns_ = now_ns;
  set_peer_held(payload[0] == std::byte{1});
}

void TransferCore::set_peer_held(bool held) {
  if (held == peer_held_) return;  // a repeat
  peer_held_ = held;
  uint64_t now_ms = voice_ms(voice_now_ns_);
  if (held) {
    hold_tone_.restart();
    if (hold_stats_.periods.size() < max_hold_periods) {
      hold_stats_.periods.push_back(HoldPeriod{false, now_ms, now_ms});
      peer_period_ = hold_stats_.periods.size() - 1;
    }
    print("the other side put the call on hold (you hear the hold tone)");
  } else {
    if (peer_period_) hold_stats_.periods[*peer_period_].end_ms = now_ms;
    peer_period_.reset();
    print("the other side resumed the call");
  }
  apply_media_hold();
}

void TransferCore::apply_media_hold() {
  if (voice_) voice_->set_held(held_ || peer_held_);
}

std::string hold_stats_json(const HoldStats& s) {
  std::string json = "{\"frames_withheld\": " + std::to_string(s.frames_withheld) +
                     ", \"hold_tone_frames\": " + std::to_string(s.hold_tone_frames) +
                     ", \"waiting_tone_frames\": " + std::to_string(s.waiting_tone_frames) +
                     ", \"hold_signals_sent\": " + std::to_string(s.hold_signals_sent) +
                     ", \"hold_signals_received\": " + std::to_string(s.hold_signals_received) + ", \"periods\": [";
  for (size_t i = 0; i < s.periods.size(); ++i) {
    const HoldPeriod& p = s.periods[i];
    json += std::string(i ? ", " : "") + "{\"by\": \"" + (p.by_me ? "me" : "peer") +
            "\", \"start_ms\": " + std::to_string(p.start_ms) + ", \"end_ms\": " + std::to_string(p.end_ms) + "}";
  }
  return json + "]}";
}

void TransferCore::voice_frame(const int16_t* captured, media::FrameOut playout, uint64_t now_ns) {
  if (!voice_ || done_) {
    std::fill(playout.begin(), playout.end(), int16_t{0});
    return;
  }
  voice_now_ns_ = now_ns;
  const VoiceSetup& setup = *config_.voice;
  if (setup.hold_at_ns != 0 && !scripted_hold_done_ && now_ns >= voice_started_ns_ + setup.hold_at_ns) {
    scripted_hold_done_ = true;
    set_hold(true);
  }
  if (setup.resume_at_ns != 0 && scripted_hold_done_ && !scripted_resume_done_ &&
      now_ns >= voice_started_ns_ + setup.resume_at_ns) {
    scripted_resume_done_ = true;
    set_hold(false);
  }
  if (held_ && ++hold_frames_ % hold_repeat_frames == 0) send_hold_signal(true);
  if (!held_ && resume_signals_left_ > 0) {
    --resume_signals_left_;
    send_hold_signal(false);
  }
  if (held_ || peer_held_) ++hold_stats_.frames_withheld;
  for (auto open : {my_period_, peer_period_})  // an open period runs to now (the call may end in it)
    if (open) hold_stats_.periods[*open].end_ms = voice_ms(now_ns);
  bool input_over = setup.input_ends ? voice_input_done_ : now_ns >= voice_started_ns_ + 1'000'000'000;
  if (input_over && !digits_queued_) {
    digits_queued_ = true;
    if (!setup.dtmf.empty() && !voice_->send_digits(setup.dtmf))
      print("tsunagu: --dtmf " + setup.dtmf + ": only 0-9 * # A-D can be sent");
  }
  static const std::array<int16_t, media::frame_samples> silence{};
  voice_->capture(media::FrameView(captured != nullptr ? captured : silence.data(), media::frame_samples), now_ns);
  voice_->playout(playout, now_ns);
  // Held by us: the held party is not heard (it sends nothing; a tail left in
  // the jitter buffer is dropped). Held by the peer: its hold tone, made here.
  if (held_) std::fill(playout.begin(), playout.end(), int16_t{0});
  if (peer_held_) {
    hold_tone_.next_frame(playout);
    ++hold_stats_.hold_tone_frames;
  }
  if (waiting_tone_on_) {
    std::array<int16_t, media::frame_samples> tone{};
    waiting_tone_.next_frame(tone);
    for (size_t i = 0; i < tone.size(); ++i)
      playout[i] = static_cast<int16_t>(std::clamp(int{playout[i]} + int{tone[i]}, -32768, 32767));
    ++hold_stats_.waiting_tone_frames;
  }
  for (auto& packet : voice_->take_packets()) send_frame(DataFrameType::media, packet);
  for (char digit : voice_->take_digits()) print(std::string("dtmf: ") + digit, true);
  if (!config_.caller) return;
  if (setup.duration_ns != 0 && now_ns >= voice_started_ns_ + setup.duration_ns) return finish(0);
  if (setup.input_ends && input_over && !voice_->sending_digits() && !voice_end_ns_)
    voice_end_ns_ = now_ns + setup.linger_ns;
  if (voice_end_ns_ && now_ns >= *voice_end_ns_) finish(0);
}

// -------------------------------------------------------------------- ending

bool TransferCore::hangup_loses_data() const {
  return !done_ && config_.reliable && started_ && !receiving_file_ && !remote_end_;
}

void TransferCore::stop() {
  done_ = true;
  next_echo_ns_.reset();
  discard_partial_file();
}

void TransferCore::fail(int exit_code, std::string why) {
  if (done_) return;
  actions_.push_back(transfer::Finish{exit_code, std::move(why)});
  stop();
}

void TransferCore::fail_after_refusal(int exit_code, std::string why) {
  if (done_ || refusal_) return;
  print("tsunagu: " + why);
  refusal_ = Refusal{exit_code, last_now_ns_ + refusal_grace_ns};
}

void TransferCore::finish(int exit_code) { fail(exit_code, {}); }

std::optional<uint64_t> TransferCore::next_deadline() const {
  if (refusal_ && !done_) return next_echo_ns_ ? std::min(*next_echo_ns_, refusal_->deadline_ns) : refusal_->deadline_ns;
  return next_echo_ns_;
}

}  // namespace tsunagu::terminal
