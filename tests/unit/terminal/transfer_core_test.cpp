// TransferCore with two real cores (caller and callee) exchanging real sealed
// frames; only the disk is in memory (MemoryOutput), so its failures can be
// chosen. Frames are byte-identical to what the CLI sends on the wire.
#include "terminal/transfer_core.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "call_test_support.hpp"

namespace tsunagu::terminal {
namespace {

using testing::all_of_type;
using testing::MemoryOutput;
using testing::printed;

constexpr uint64_t ms = 1'000'000;

struct Side {
  MemoryOutput output;
  TransferCore core;
  std::vector<TransferAction> seen;  // every action, in order
  Side(TransferConfig config) : core(config, output) {}
};

// Two cores joined the way the shell joins them to ICE: stream bytes and
// datagrams of one are the other's input, until both are quiet.
struct Pair {
  Side caller, callee;
  uint64_t now = 1000 * ms;
  bool deliver = true;  // false: what is sent is lost

  Pair(TransferConfig caller_config, TransferConfig callee_config)
      : caller((caller_config.caller = true, caller_config)), callee((callee_config.caller = false, callee_config)) {}

  void start() {
    auto secret = testing::test_secret();
    REQUIRE(caller.core.keys(secret, "call-1", now));
    REQUIRE(callee.core.keys(secret, "call-1", now));
    caller.core.connected(now);
    callee.core.connected(now);
    settle();
  }

  // Moves frames both ways until no side has anything more to say.
  void settle() {
    for (int round = 0; round < 100; ++round) {
      bool to_callee = move(caller, callee);  // both directions every round
      bool to_caller = move(callee, caller);
      bool moved = to_callee || to_caller;
      if (!moved) return;
    }
    FAIL("the cores kept talking for 100 rounds");
  }

  bool move(Side& from, Side& to) {
    auto actions = from.core.take_actions();
    if (actions.empty()) return false;
    bool sent_stream = false;
    for (auto& action : actions) {
      from.seen.push_back(action);
      if (!deliver) continue;
      if (auto* s = std::get_if<transfer::SendStream>(&action)) {
        to.core.data(s->bytes, now);
        sent_stream = true;
      }
      if (auto* d = std::get_if<transfer::SendDatagram>(&action)) to.core.data(d->bytes, now);
    }
    // The shell's output buffer empties at once here.
    if (sent_stream) from.core.output_drained(now);
    return true;
  }

  std::optional<transfer::Finish> finish_of(Side& side) {
    auto finishes = all_of_type<transfer::Finish>(side.seen);
    if (finishes.empty()) return std::nullopt;
    return finishes.back();
  }
};

TransferConfig pipe_caller() { return TransferConfig{true, true, TransferMode::pipe, 20, {}, 0}; }
TransferConfig answering(std::string directory = {}) {
  return TransferConfig{false, true, TransferMode::answer, 20, std::move(directory), 0};
}
TransferConfig file_sender() { return TransferConfig{true, true, TransferMode::send_file, 20, {}, 0}; }

}  // namespace

TEST_CASE("a pipe carries bytes both ways and the caller finishes once each side acknowledged the other's end") {
  Pair pair(pipe_caller(), answering());
  pair.start();
  CHECK(all_of_type<transfer::StartInput>(pair.caller.seen).size() == 1);
  CHECK(all_of_type<transfer::StartInput>(pair.callee.seen).size() == 1);  // listen without --recv: both ways

  pair.caller.core.input(to_bytes("hello "), pair.now);
  pair.caller.core.input(to_bytes("callee"), pair.now);
  pair.settle();
  CHECK(pair.callee.output.stdout_bytes == "hello callee");
  pair.caller.core.input_end(pair.now);
  pair.settle();
  CHECK_FALSE(pair.finish_of(pair.caller).has_value());  // the callee has not ended its side yet

  pair.callee.core.input(to_bytes("hi caller"), pair.now);
  pair.callee.core.input_end(pair.now);
  pair.settle();
  CHECK(pair.caller.output.stdout_bytes == "hi caller");
  auto finished = pair.finish_of(pair.caller);
  REQUIRE(finished.has_value());
  CHECK(finished->exit_code == 0);
  CHECK_FALSE(pair.finish_of(pair.callee).has_value());  // the callee waits for the node's ended
  CHECK(printed(pair.caller.seen).find("transferred 12 bytes out, 9 in") != std::string::npos);
  CHECK(pair.caller.core.stats().bytes_sent == 12);
  CHECK_FALSE(pair.callee.core.hangup_loses_data());
}

// integration/call_pipe_and_file failed once under ASan: the caller's hang-up,
// through the node, reached the callee before the caller's acknowledgement of
// the callee's end frame did over ICE, and the callee never said what it moved.
TEST_CASE("the callee reports a pipe's throughput once when the hang-up comes before the caller's last acknowledgement") {
  Pair pair(pipe_caller(), answering());
  pair.start();
  pair.caller.core.input(to_bytes("hello callee"), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.settle();
  pair.callee.core.input(to_bytes("hi caller"), pair.now);
  pair.callee.core.input_end(pair.now);
  pair.move(pair.callee, pair.caller);  // the callee's data and end reach the caller
  pair.deliver = false;                 // the caller's end_received is still in flight...
  pair.move(pair.caller, pair.callee);
  REQUIRE(pair.finish_of(pair.caller).has_value());  // ...and it has hung up
  CHECK(printed(pair.callee.seen).find("transferred") == std::string::npos);
  CHECK_FALSE(pair.callee.core.hangup_loses_data());
  pair.callee.core.peer_hung_up(pair.now);
  pair.callee.core.peer_hung_up(pair.now);
  pair.move(pair.callee, pair.caller);
  std::string said = printed(pair.callee.seen);
  CHECK(said.find("transferred 9 bytes out, 12 in") != std::string::npos);
  CHECK(said.find("transferred") == said.rfind("transferred"));  // once
}

TEST_CASE("a callee that reported its pipe's throughput does not report it again at the hang-up") {
  Pair pair(pipe_caller(), answering());
  pair.start();
  pair.caller.core.input(to_bytes("abc"), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.callee.core.input_end(pair.now);
  pair.settle();
  pair.callee.core.peer_hung_up(pair.now);
  pair.settle();
  std::string said = printed(pair.callee.seen);
  CHECK(said.find("transferred 0 bytes out, 3 in") != std::string::npos);
  CHECK(said.find("transferred") == said.rfind("transferred"));
}

TEST_CASE("a hang-up before the peer's end is reported as data that may be missing") {
  Pair pair(pipe_caller(), answering());
  pair.start();
  pair.caller.core.input(to_bytes("partial"), pair.now);
  pair.settle();
  CHECK(pair.callee.core.hangup_loses_data());
}

TEST_CASE("a file arrives whole: header, data, end, then the receiver's matching SHA-256 ends the call with 0") {
  Pair pair(file_sender(), answering("inbox"));
  pair.start();
  CHECK(all_of_type<transfer::StartInput>(pair.callee.seen).empty());  // --recv: the callee sends nothing
  std::string content(40000, 'x');
  pair.caller.core.file_opened("/tmp/some/report.bin", content.size(), pair.now);
  Bytes bytes = to_bytes(content);
  for (size_t at = 0; at < bytes.size(); at += max_stream_chunk)  // the shell reads at most this much at once
    pair.caller.core.input(ByteView(bytes).subspan(at, std::min(max_stream_chunk, bytes.size() - at)), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.settle();
  CHECK(pair.callee.output.stored.at("report.bin") == content);
  CHECK(printed(pair.callee.seen).find("receiving report.bin (40000 bytes) into inbox") != std::string::npos);
  CHECK(printed(pair.callee.seen).find("stored dir/report.bin sha256 ") != std::string::npos);
  auto finished = pair.finish_of(pair.caller);
  REQUIRE(finished.has_value());
  CHECK(finished->exit_code == 0);
  CHECK(printed(pair.caller.seen).find("delivered /tmp/some/report.bin: the receiver's SHA-256 matches") !=
        std::string::npos);
}

TEST_CASE("a file longer than announced is not kept and both sides fail with 11") {
  Pair pair(file_sender(), answering("inbox"));
  pair.start();
  pair.caller.core.file_opened("big.bin", 10, pair.now);
  pair.caller.core.input(to_bytes("0123456789AB"), pair.now);
  pair.settle();
  CHECK(pair.callee.output.stored.empty());
  CHECK(pair.callee.output.discarded == 1);
  CHECK(printed(pair.callee.seen).find("sent more than the 10 bytes it announced") != std::string::npos);
  // The callee keeps the call until the sender has its refusal (its hang-up
  // ends it), at most refusal_grace_ns; the exit code is decided already.
  CHECK(pair.callee.core.refusal_exit_code() == exit_call_failed);
  CHECK_FALSE(pair.finish_of(pair.callee).has_value());
  auto caller_end = pair.finish_of(pair.caller);
  REQUIRE(caller_end.has_value());
  CHECK(caller_end->exit_code == exit_call_failed);
  CHECK(caller_end->why == "the receiver did not store the file");
  REQUIRE(pair.callee.core.next_deadline().has_value());
  pair.callee.core.tick(*pair.callee.core.next_deadline());
  pair.settle();
  auto callee_end = pair.finish_of(pair.callee);
  REQUIRE(callee_end.has_value());
  CHECK(callee_end->exit_code == exit_call_failed);
}

TEST_CASE("a file shorter than announced is removed and the sender learns it was not stored") {
  Pair pair(file_sender(), answering("inbox"));
  pair.start();
  pair.caller.core.file_opened("short.bin", 100, pair.now);
  pair.caller.core.input(to_bytes("only this"), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.settle();
  CHECK(pair.callee.output.stored.empty());
  CHECK(pair.callee.output.discarded == 1);
  CHECK(printed(pair.callee.seen).find("failed to store dir/short.bin") != std::string::npos);
  auto caller_end = pair.finish_of(pair.caller);
  REQUIRE(caller_end.has_value());
  CHECK(caller_end->exit_code == exit_call_failed);
}

TEST_CASE("a refused file (the name exists) goes nowhere, not even to stdout, and both sides say why") {
  Pair pair(file_sender(), answering("inbox"));
  pair.callee.output.stored["taken.txt"] = "old";
  pair.start();
  pair.caller.core.file_opened("taken.txt", 3, pair.now);
  pair.caller.core.input(to_bytes("new"), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.settle();
  CHECK(pair.callee.output.stored.at("taken.txt") == "old");
  CHECK(pair.callee.output.stdout_bytes.empty());
  CHECK(printed(pair.callee.seen).find("dir/taken.txt already exists: refusing to overwrite it") != std::string::npos);
  CHECK(pair.callee.core.refusal_exit_code() == exit_call_failed);
  auto caller_end = pair.finish_of(pair.caller);
  REQUIRE(caller_end.has_value());
  CHECK(caller_end->why == "the receiver did not store the file");
}

TEST_CASE("a listener without --recv refuses a file header") {
  Pair pair(file_sender(), answering());
  pair.start();
  pair.caller.core.file_opened("f.bin", 1, pair.now);
  pair.settle();
  auto caller_end = pair.finish_of(pair.caller);
  REQUIRE(caller_end.has_value());
  CHECK(caller_end->exit_code == exit_call_failed);
}

TEST_CASE("a failed commit (fsync or rename) is reported to the sender as not stored") {
  Pair pair(file_sender(), answering("inbox"));
  pair.callee.output.fail_commit = true;
  pair.start();
  pair.caller.core.file_opened("f.bin", 2, pair.now);
  pair.caller.core.input(to_bytes("ab"), pair.now);
  pair.caller.core.input_end(pair.now);
  pair.settle();
  CHECK(printed(pair.callee.seen).find("failed to store dir/f.bin") != std::string::npos);
  auto caller_end = pair.finish_of(pair.caller);
  REQUIRE(caller_end.has_value());
  CHECK(caller_end->why == "the receiver did not store the file");
}

TEST_CASE("a receiver's SHA-256 that does not match the file sent fails the sender with 11") {
  TransferConfig config = file_sender();
  MemoryOutput output;
  TransferCore sender(config, output);
  auto secret = testing::test_secret();
  uint64_t now = 5 * ms;
  REQUIRE(sender.keys(secret, "call-1", now));
  sender.connected(now);
  sender.file_opened("f.bin", 2, now);
  sender.input(to_bytes("ab"), now);
  sender.input_end(now);
  sender.output_drained(now);
  (void)sender.take_actions();
  // The receiver's answer, sealed with the receiver's direction: stored, but another digest.
  CallKeyMaterial material;
  std::copy(secret.begin(), secret.end(), material.secret.begin());
  material.call_id = "call-1";
  PacketSealer receiver(material, Direction::callee_to_caller);
  Bytes plain(34, std::byte{0x55});
  plain[0] = std::byte(static_cast<uint8_t>(DataFrameType::file_result));
  plain[1] = std::byte{1};
  Bytes framed;
  append_stream_frame(framed, receiver.seal(plain));
  sender.data(framed, now);
  auto finishes = all_of_type<transfer::Finish>(sender.take_actions());
  REQUIRE(finishes.size() == 1);
  CHECK(finishes[0].exit_code == exit_call_failed);
  CHECK(finishes[0].why == "the receiver's SHA-256 does not match");
}

TEST_CASE("packets that beat the keys are kept and read once the keys arrive") {
  Pair pair(pipe_caller(), answering());
  auto secret = testing::test_secret();
  REQUIRE(pair.caller.core.keys(secret, "call-1", pair.now));
  pair.caller.core.connected(pair.now);
  pair.caller.core.input(to_bytes("early"), pair.now);
  pair.callee.core.connected(pair.now);
  pair.settle();  // the callee has no keys yet
  CHECK(pair.callee.output.stdout_bytes.empty());
  REQUIRE(pair.callee.core.keys(secret, "call-1", pair.now));
  CHECK(pair.callee.output.stdout_bytes == "early");
  CHECK(pair.callee.core.started());
}

TEST_CASE("key material that is not 32 bytes is refused") {
  MemoryOutput output;
  TransferCore core(pipe_caller(), output);
  CHECK_FALSE(core.keys(Bytes(31), "call-1", 0));
}

TEST_CASE("a stream frame longer than the limit breaks the stream: exit 11") {
  MemoryOutput output;
  TransferCore core(answering(), output);
  REQUIRE(core.keys(testing::test_secret(), "call-1", 0));
  Bytes bad = {std::byte{0xff}, std::byte{0xff}, std::byte{0}};
  core.data(bad, 0);
  auto finishes = all_of_type<transfer::Finish>(core.take_actions());
  REQUIRE(finishes.size() == 1);
  CHECK(finishes[0].exit_code == exit_call_failed);
  CHECK(finishes[0].why.find("data stream broken") == 0);
}

TEST_CASE("a packet sealed with other keys is dropped, said at most three times") {
  Pair pair(pipe_caller(), answering());
  pair.start();
  MemoryOutput output;
  TransferCore stranger(pipe_caller(), output);
  Bytes other(32, std::byte{9});
  REQUIRE(stranger.keys(other, "call-1", 0));
  stranger.connected(0);
  for (int i = 0; i < 5; ++i) stranger.input(to_bytes("x"), 0);
  for (auto& action : stranger.take_actions())
    if (auto* s = std::get_if<transfer::SendStream>(&action)) pair.callee.core.data(s->bytes, 0);
  auto said = printed(pair.callee.core.take_actions());
  size_t count = 0;
  for (size_t at = said.find("dropped a packet"); at != std::string::npos; at = said.find("dropped a packet", at + 1))
    ++count;
  CHECK(count == 3);
  CHECK(pair.callee.output.stdout_bytes.empty());
}

TEST_CASE("writing stdout failing ends the call with 11") {
  Pair pair(pipe_caller(), answering());
  pair.callee.output.fail_stdout = true;
  pair.start();
  pair.caller.core.input(to_bytes("x"), pair.now);
  pair.settle();
  auto end = pair.finish_of(pair.callee);
  REQUIRE(end.has_value());
  CHECK(end->why == "writing to stdout failed");
}

TEST_CASE("the echo test sends its requests 20 ms apart and reports the round-trip times") {
  TransferConfig echo{true, false, TransferMode::echo_test, 3, {}, 0};
  TransferConfig answer{false, false, TransferMode::answer, 20, {}, 0};
  Pair pair(echo, answer);
  pair.start();
  for (unsigned i = 0; i < 3; ++i) {
    auto deadline = pair.caller.core.next_deadline();
    REQUIRE(deadline.has_value());
    CHECK(*deadline == pair.now + (i == 0 ? 0 : TransferCore::echo_interval_ns));
    pair.now = *deadline;
    pair.caller.core.tick(pair.now);
    auto requests = pair.caller.core.take_actions();
    REQUIRE(all_of_type<transfer::SendDatagram>(requests).size() == 1);
    for (auto& a : requests)
      if (auto* d = std::get_if<transfer::SendDatagram>(&a)) pair.callee.core.data(d->bytes, pair.now);
    pair.now += (i + 1) * ms;  // RTTs of 1, 2 and 3 ms
    for (auto& a : pair.callee.core.take_actions())
      if (auto* d = std::get_if<transfer::SendDatagram>(&a)) pair.caller.core.data(d->bytes, pair.now);
    pair.now -= (i + 1) * ms;
  }
  auto actions = pair.caller.core.take_actions();
  auto finishes = all_of_type<transfer::Finish>(actions);
  REQUIRE(finishes.size() == 1);
  CHECK(finishes[0].exit_code == 0);
  REQUIRE(pair.caller.core.echo_rtts_ms().size() == 3);
  CHECK(pair.caller.core.echo_rtts_ms()[2] == doctest::Approx(3.0));
  auto lines = all_of_type<transfer::Print>(actions);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back().to_stdout);
  CHECK(lines.back().line ==
        "echo test: 3 sent, 3 returned, loss 0.0%, RTT min 1.000 ms, median 2.000 ms, max 3.000 ms, jitter 1.000 ms");
}

TEST_CASE("an echo test whose replies never come ends with 11 after a second of grace") {
  TransferConfig echo{true, false, TransferMode::echo_test, 2, {}, 0};
  MemoryOutput output;
  TransferCore core(echo, output);
  uint64_t now = 0;
  REQUIRE(core.keys(testing::test_secret(), "call-1", now));
  core.connected(now);
  std::optional<transfer::Finish> end;
  for (int tick = 0; tick < 100 && !end; ++tick) {
    auto deadline = core.next_deadline();
    REQUIRE(deadline.has_value());
    now = *deadline;
    core.tick(now);
    for (auto& f : all_of_type<transfer::Finish>(core.take_actions())) end = f;
  }
  REQUIRE(end.has_value());
  CHECK(end->exit_code == exit_call_failed);
  CHECK(now == (2 + TransferCore::echo_grace_ticks) * TransferCore::echo_interval_ns);
  CHECK_FALSE(core.next_deadline().has_value());
}

TEST_CASE("datagrams answered before ICE says connected leave once it does") {
  TransferConfig answer{false, false, TransferMode::answer, 20, {}, 0};
  TransferConfig echo{true, false, TransferMode::echo_test, 1, {}, 0};
  Pair pair(echo, answer);
  auto secret = testing::test_secret();
  REQUIRE(pair.caller.core.keys(secret, "call-1", 0));
  REQUIRE(pair.callee.core.keys(secret, "call-1", 0));
  pair.caller.core.connected(0);
  pair.caller.core.tick(0);
  for (auto& a : pair.caller.core.take_actions())
    if (auto* d = std::get_if<transfer::SendDatagram>(&a)) pair.callee.core.data(d->bytes, 0);
  CHECK(all_of_type<transfer::SendDatagram>(pair.callee.core.take_actions()).empty());
  pair.callee.core.connected(0);
  CHECK(all_of_type<transfer::SendDatagram>(pair.callee.core.take_actions()).size() == 1);
}

TEST_CASE("input that cannot be read ends the call with the code the shell gives") {
  MemoryOutput output;
  TransferCore core(file_sender(), output);
  core.input_failed(exit_usage, "cannot open nope: No such file or directory");
  auto finishes = all_of_type<transfer::Finish>(core.take_actions());
  REQUIRE(finishes.size() == 1);
  CHECK(finishes[0].exit_code == exit_usage);
  CHECK(core.done());
}

// ---------------------------------------------------------------- phone calls

namespace {

TransferConfig voice_caller(std::string dtmf, uint64_t duration_ns = 0) {
  TransferConfig config{true, false, TransferMode::voice, 20, {}, 0};
  config.voice = VoiceSetup{};
  config.voice->media.ssrc = 0x1111;
  config.voice->dtmf = std::move(dtmf);
  config.voice->duration_ns = duration_ns;
  return config;
}
TransferConfig voice_callee() {
  TransferConfig config{false, false, TransferMode::answer, 20, {}, 0};
  config.voice = VoiceSetup{};
  config.voice->media.ssrc = 0x2222;
  config.voice->input_ends = false;
  return config;
}

// A 440 Hz tone, 20 ms at a time, phase-continuous.
std::array<int16_t, media::frame_samples> tone_frame(uint64_t index) {
  std::array<int16_t, media::frame_samples> frame{};
  for (size_t i = 0; i < frame.size(); ++i) {
    double t = static_cast<double>(index * frame.size() + i) / media::sample_rate;
    frame[i] = static_cast<int16_t>(8000 * std::sin(2 * M_PI * 440 * t));
  }
  return frame;
}

double energy(const std::array<int16_t, media::frame_samples>& frame) {
  double sum = 0;
  for (int16_t s : frame) sum += static_cast<double>(s) * s;
  return sum / frame.size();
}

std::string stdout_of(const std::vector<TransferAction>& actions) {
  std::string out;
  for (const auto& action : actions)
    if (const auto* a = std::get_if<transfer::Print>(&action); a && a->to_stdout) out += a->line + "\n";
  return out;
}

}  // namespace

TEST_CASE("a phone call: the caller's voice is heard, its digits print at the callee, and it hangs up after them") {
  Pair pair(voice_caller("41#"), voice_callee());
  pair.start();
  CHECK(all_of_type<transfer::StartAudio>(pair.caller.seen).size() == 1);
  CHECK(all_of_type<transfer::StartAudio>(pair.callee.seen).size() == 1);
  const uint64_t input_frames = 50;  // one second of tone
  std::array<int16_t, media::frame_samples> heard{}, ignored{};
  double loudest = 0;
  uint64_t frame = 0, finished_at = 0;
  for (; frame < 400 && !pair.caller.core.done(); ++frame) {
    pair.now += media::frame_ns;
    if (frame == input_frames) pair.caller.core.voice_input_end(pair.now);
    auto tone = tone_frame(frame);
    pair.caller.core.voice_frame(frame < input_frames ? tone.data() : nullptr, ignored, pair.now);
    pair.callee.core.voice_frame(nullptr, heard, pair.now);
    if (frame < input_frames + 10) loudest = std::max(loudest, energy(heard));
    pair.settle();
    if (pair.caller.core.done()) finished_at = frame;
  }
  CHECK(loudest > 1e6);  // a 8000-amplitude tone has an energy of 3.2e7; silence 0
  auto finish = pair.finish_of(pair.caller);
  REQUIRE(finish);
  CHECK(finish->exit_code == 0);
  // Three digits of 100 ms with 60 ms between them, then the linger of a second.
  CHECK(finished_at >= input_frames + 21 + 50 - 1);
  CHECK(finished_at <= input_frames + 24 + 50 + 15);
  CHECK(stdout_of(pair.callee.seen) == "dtmf: 4\ndtmf: 1\ndtmf: #\n");
  const media::VoiceStats* stats = pair.callee.core.voice_stats();
  REQUIRE(stats != nullptr);
  CHECK(stats->digits_received == "41#");
  CHECK(stats->packets_received > 40);
  CHECK(stats->lost == 0);
}

TEST_CASE("a phone call with --duration hangs up then, while its input still lasts") {
  Pair pair(voice_caller("", 500 * ms), voice_callee());
  pair.start();
  std::array<int16_t, media::frame_samples> out{};
  uint64_t frame = 0;
  for (; frame < 100 && !pair.caller.core.done(); ++frame) {
    pair.now += media::frame_ns;
    auto tone = tone_frame(frame);
    pair.caller.core.voice_frame(tone.data(), out, pair.now);
    pair.callee.core.voice_frame(nullptr, out, pair.now);
    pair.settle();
  }
  REQUIRE(pair.finish_of(pair.caller));
  CHECK(pair.finish_of(pair.caller)->exit_code == 0);
  CHECK(frame == 25);  // 500 ms of 20 ms frames
}

TEST_CASE("digits that cannot be sent are said, and the call goes on") {
  Pair pair(voice_caller("12x"), voice_callee());
  pair.start();
  std::array<int16_t, media::frame_samples> out{};
  pair.caller.core.voice_input_end(pair.now);
  pair.now += media::frame_ns;
  pair.caller.core.voice_frame(nullptr, out, pair.now);
  pair.settle();
  CHECK(printed(pair.caller.seen).find("--dtmf 12x: only 0-9 * # A-D can be sent") != std::string::npos);
  CHECK_FALSE(pair.caller.core.done());
}

TEST_CASE("a listener without audio says once that the caller is talking, and answers nothing") {
  Pair pair(voice_caller(""), TransferConfig{false, false, TransferMode::answer, 20, {}, 0});
  pair.start();
  std::array<int16_t, media::frame_samples> out{};
  for (uint64_t frame = 0; frame < 20; ++frame) {
    pair.now += media::frame_ns;
    auto tone = tone_frame(frame);
    pair.caller.core.voice_frame(tone.data(), out, pair.now);
    pair.settle();
  }
  std::string said = printed(pair.callee.seen);
  CHECK(said.find("the other side is talking, but this end has no audio") != std::string::npos);
  CHECK(said.find("no audio") == said.rfind("no audio"));
  CHECK(all_of_type<transfer::SendDatagram>(pair.callee.seen).empty());
}

namespace {

std::array<int16_t, media::frame_samples> next_tone(audio::ToneGenerator& generator) {
  std::array<int16_t, media::frame_samples> frame{};
  generator.next_frame(frame);
  return frame;
}

}  // namespace

TEST_CASE("hold: the holder sends no voice, the held side plays the hold tone made locally, resume brings the voice back") {
  TransferConfig caller = voice_caller("", 2400 * ms);
  caller.voice->hold_at_ns = 400 * ms;
  caller.voice->resume_at_ns = 1400 * ms;
  Pair pair(caller, voice_callee());
  pair.start();
  std::array<int16_t, media::frame_samples> heard{}, ignored{};
  audio::ToneGenerator expected_tone(audio::Tone::hold);
  uint64_t received_at_hold = 0, sent_by_callee_at_hold = 0;
  bool tone_exact = true;
  double loud_before = 0, loud_after = 0;
  for (uint64_t frame = 1; frame <= 120 && !pair.caller.core.done(); ++frame) {
    pair.now += media::frame_ns;
    auto tone = tone_frame(frame);
    pair.caller.core.voice_frame(tone.data(), ignored, pair.now);
    pair.settle();
    pair.callee.core.voice_frame(nullptr, heard, pair.now);
    pair.settle();
    const media::VoiceStats* callee_stats = pair.callee.core.voice_stats();
    if (frame == 19) {
      CHECK_FALSE(pair.caller.core.held());
      loud_before = energy(heard);
    }
    if (frame == 20) {  // 400 ms: held
      CHECK(pair.caller.core.held());
      CHECK(pair.callee.core.peer_held());
      received_at_hold = callee_stats->packets_received;
      sent_by_callee_at_hold = callee_stats->packets_sent;
    }
    // While held the callee hears exactly the hold tone (100 ms on, then silence), nothing of the caller.
    if (frame >= 20 && frame <= 69 && heard != next_tone(expected_tone)) tone_exact = false;
    if (frame == 69) {
      CHECK(callee_stats->packets_received == received_at_hold);  // no RTP from the holder
      CHECK(callee_stats->packets_sent == sent_by_callee_at_hold);  // nor to it
      CHECK(pair.callee.core.peer_held());
    }
    if (frame == 70) {  // 1400 ms: resumed
      CHECK_FALSE(pair.caller.core.held());
      CHECK_FALSE(pair.callee.core.peer_held());
    }
    if (frame >= 80 && frame < 90) loud_after = std::max(loud_after, energy(heard));
  }
  CHECK(tone_exact);
  CHECK(loud_before > 1e6);
  CHECK(loud_after > 1e6);
  const HoldStats& mine = pair.caller.core.hold_stats();
  REQUIRE(mine.periods.size() == 1);
  CHECK(mine.periods[0].by_me);
  CHECK(mine.periods[0].start_ms == 400);
  CHECK(mine.periods[0].end_ms == 1400);
  CHECK(mine.frames_withheld == 50);
  // One at the hold, one every 500 ms while held (at 480 and 980 ms into it), three at the resume.
  CHECK(mine.hold_signals_sent == 1 + 2 + 3);
  const HoldStats& theirs = pair.callee.core.hold_stats();
  REQUIRE(theirs.periods.size() == 1);
  CHECK_FALSE(theirs.periods[0].by_me);
  CHECK(theirs.periods[0].end_ms - theirs.periods[0].start_ms == 1000);
  CHECK(theirs.hold_tone_frames == 50);
  CHECK(theirs.frames_withheld == 50);
  CHECK(theirs.hold_signals_received == mine.hold_signals_sent);
  std::string said = printed(pair.callee.seen);
  CHECK(said.find("the other side put the call on hold") != std::string::npos);
  CHECK(said.find("the other side resumed the call") != std::string::npos);
}

TEST_CASE("a lost hold signal is made up by its repeat within 500 ms, and the h key holds and resumes") {
  Pair pair(voice_caller(""), voice_callee());
  pair.start();
  std::array<int16_t, media::frame_samples> out{};
  pair.deliver = false;  // the first hold frame is lost
  pair.caller.core.voice_key('h');
  pair.settle();
  pair.deliver = true;
  CHECK(pair.caller.core.held());
  CHECK_FALSE(pair.callee.core.peer_held());
  unsigned frames = 0;
  while (!pair.callee.core.peer_held() && frames < 100) {
    ++frames;
    pair.now += media::frame_ns;
    pair.caller.core.voice_frame(nullptr, out, pair.now);
    pair.settle();
  }
  CHECK(frames == TransferCore::hold_repeat_frames);
  pair.caller.core.voice_key('H');
  pair.settle();
  CHECK_FALSE(pair.caller.core.held());
  CHECK_FALSE(pair.callee.core.peer_held());
  CHECK(printed(pair.caller.seen).find("on hold: nothing is sent either way") != std::string::npos);
}

TEST_CASE("a held end whose peer's resume frames were all lost resumes on its voice once the hold frames stop") {
  Pair pair(voice_caller(""), voice_callee());
  pair.start();
  std::array<int16_t, media::frame_samples> out{};
  auto frame = [&](uint64_t index) {
    pair.now += media::frame_ns;
    auto tone = tone_frame(index);
    pair.caller.core.voice_frame(tone.data(), out, pair.now);
    pair.callee.core.voice_frame(nullptr, out, pair.now);
    pair.settle();
  };
  pair.caller.core.set_hold(true);
  pair.settle();
  for (uint64_t i = 0; i < 30; ++i) frame(i);  // a hold repeat at 500 ms
  REQUIRE(pair.callee.core.peer_held());
  pair.deliver = false;
  pair.caller.core.set_hold(false);  // all three resume frames lost
  pair.settle();
  for (uint64_t i = 30; i < 33; ++i) frame(i);
  pair.deliver = true;
  uint64_t frames = 0;
  while (pair.callee.core.peer_held() && frames < 200) frame(33 + frames++);
  // The last hold frame came 500 ms into the hold; voice resumes the call 1.25 s after it, at 1.76 s:
  // the 88th frame, the 55th of those after the lost resume.
  CHECK(frames == 55);
  CHECK_FALSE(pair.callee.core.peer_held());
}

TEST_CASE("the call-waiting tone is mixed into what a call plays out while it is on") {
  Pair pair(voice_caller(""), voice_callee());
  pair.start();
  audio::ToneGenerator expected(audio::Tone::call_waiting);
  std::array<int16_t, media::frame_samples> heard{};
  pair.callee.core.set_waiting_tone(true);
  bool exact = true;
  for (int frame = 0; frame < 30; ++frame) {  // the caller says nothing: the playout is the tone alone
    pair.now += media::frame_ns;
    pair.callee.core.voice_frame(nullptr, heard, pair.now);
    if (heard != next_tone(expected)) exact = false;
  }
  CHECK(exact);
  pair.callee.core.set_waiting_tone(false);
  pair.now += media::frame_ns;
  pair.callee.core.voice_frame(nullptr, heard, pair.now);
  CHECK(energy(heard) == 0);
  CHECK(pair.callee.core.hold_stats().waiting_tone_frames == 30);
}

TEST_CASE("a hold frame of the wrong size is ignored; a well-formed one from the same sealer is not") {
  Pair pair(voice_caller(""), voice_callee());
  pair.start();
  CallKeyMaterial material;
  auto secret = testing::test_secret();
  std::copy(secret.begin(), secret.end(), material.secret.begin());
  material.call_id = "call-1";
  // As the caller seals (far ahead of its own sequence numbers, so the replay window takes it).
  auto sealer = PacketSealer::starting_at_for_testing(material, Direction::caller_to_callee, 1'000'000);
  auto hold_frame = [](std::initializer_list<uint8_t> payload) {
    Bytes plain{std::byte{static_cast<uint8_t>(DataFrameType::hold)}};
    for (uint8_t b : payload) plain.push_back(std::byte{b});
    return plain;
  };
  pair.callee.core.data(sealer.seal(hold_frame({1, 1})), pair.now);
  CHECK_FALSE(pair.callee.core.peer_held());
  pair.callee.core.data(sealer.seal(hold_frame({})), pair.now);
  CHECK_FALSE(pair.callee.core.peer_held());
  pair.callee.core.data(sealer.seal(hold_frame({1})), pair.now);
  CHECK(pair.callee.core.peer_held());
  CHECK(pair.callee.core.hold_stats().hold_signals_received == 1);
}

TEST_CASE("hold statistics as the report's JSON") {
  HoldStats stats;
  stats.frames_withheld = 50;
  stats.hold_tone_frames = 3;
  stats.hold_signals_sent = 5;
  stats.periods.push_back(HoldPeriod{true, 420, 1420});
  stats.periods.push_back(HoldPeriod{false, 2000, 2100});
  CHECK(hold_stats_json(stats) ==
        "{\"frames_withheld\": 50, \"hold_tone_frames\": 3, \"waiting_tone_frames\": 0, \"hold_signals_sent\": 5, "
        "\"hold_signals_received\": 0, \"periods\": [{\"by\": \"me\", \"start_ms\": 420, \"end_ms\": 1420}, "
        "{\"by\": \"peer\", \"start_ms\": 2000, \"end_ms\": 2100}]}");
}

}  // namespace tsunagu::terminal
