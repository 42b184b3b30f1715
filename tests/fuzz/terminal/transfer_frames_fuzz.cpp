// The frames a peer sends once a call is up, after they open: TransferCore
// parses file headers, results, echo payloads, stream bytes, and (a phone
// call) media and hold frames from them. The
// input is cut into plaintexts (a 2-byte length each, at most max_stream_chunk
// + 1), sealed with the call's keys as the peer would, and fed to a callee
// that receives files (in memory) and to a caller sending one: neither may
// crash, and what they send back must stay within the sealed packet limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <array>

#include "../../unit/terminal/call_test_support.hpp"
#include "terminal/transfer_core.hpp"

namespace {

using namespace tsunagu;
using namespace tsunagu::terminal;

void check_sent(TransferCore& core) {
  for (auto& action : core.take_actions()) {
    if (auto* s = std::get_if<transfer::SendStream>(&action))
      if (s->bytes.size() > 2 + max_sealed_packet) std::abort();
    if (auto* d = std::get_if<transfer::SendDatagram>(&action))
      if (d->bytes.size() > max_sealed_packet) std::abort();
  }
}

void run(TransferConfig config, Direction peer, const uint8_t* data, size_t size) {
  testing::MemoryOutput output;
  TransferCore core(config, output);
  Bytes secret = testing::test_secret();
  if (!core.keys(secret, "fuzz-call", 1)) std::abort();
  core.connected(1);
  if (config.caller) core.file_opened("sent.bin", 4, 1);
  CallKeyMaterial material;
  std::copy(secret.begin(), secret.end(), material.secret.begin());
  material.call_id = "fuzz-call";
  PacketSealer sealer(material, peer);
  size_t at = 0;
  uint64_t now = 2;
  while (at + 2 <= size && !core.done()) {
    size_t length = (size_t{data[at]} << 8 | data[at + 1]) % (max_stream_chunk + 2);
    at += 2;
    if (length > size - at) length = size - at;
    Bytes sealed = sealer.seal(ByteView(reinterpret_cast<const std::byte*>(data + at), length));
    at += length;
    if (config.reliable) {
      Bytes framed;
      append_stream_frame(framed, sealed);
      core.data(framed, ++now);
    } else {
      core.data(sealed, ++now);
    }
    if (config.voice) {  // a 20 ms frame after each packet: hold state, tones and playout run
      std::array<int16_t, media::frame_samples> playout{};
      now += media::frame_ns;
      core.voice_frame(nullptr, playout, now);
    }
    check_sent(core);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 70000) return 0;
  run(TransferConfig{false, true, TransferMode::answer, 20, "inbox", 0}, Direction::caller_to_callee, data, size);
  run(TransferConfig{true, true, TransferMode::send_file, 20, {}, 0}, Direction::callee_to_caller, data, size);
  run(TransferConfig{true, false, TransferMode::echo_test, 3, {}, 0}, Direction::callee_to_caller, data, size);
  TransferConfig voice{false, false, TransferMode::answer, 20, {}, 0};
  voice.voice = VoiceSetup{};
  voice.voice->input_ends = false;
  run(voice, Direction::caller_to_callee, data, size);
  return 0;
}
