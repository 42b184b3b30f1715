// voicemail_deliver chunks arrive from the LAN agent: whatever a message
// holds, the receiver answers it (never crashes) and its answer decodes. The
// mailbox directory cannot be created, so completed messages take the error
// path instead of filling the disk; a run of inputs shares one receiver, so
// sequences of chunks are explored too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/stun_message.hpp"
#include "terminal/voicemail_receiver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tsunagu;
  static terminal::VoicemailReceiver receiver("/proc/tsunagu-fuzz-no-such-dir/mailbox");
  auto decoded = proto::decode(ByteView(reinterpret_cast<const std::byte*>(data), size));
  if (!decoded) return 0;
  Bytes answer = receiver.handle(decoded->message);
  if (!proto::decode(answer)) std::abort();  // our own answer must be a valid message
  return 0;
}
