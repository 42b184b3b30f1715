// A LAN terminal's side of voicemail (`tsunagu listen --lan DIR --mailbox
// MAILDIR`): its agent passes each message waiting at the node as
// voicemail_deliver chunks; the receiver assembles them and, once a message is
// whole, saves it in the mailbox folder (temporary file, fsync, rename; the
// same name as `tsunagu login --mailbox` uses) before answering with the full
// offset, which is what lets the agent delete it on the node.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "base/bytes.hpp"
#include "proto/directory_records.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::terminal {

inline constexpr uint64_t max_received_voicemail = 256ull << 20;  // the node's own limit
inline constexpr size_t max_partial_voicemails = 4;

class VoicemailReceiver {
 public:
  explicit VoicemailReceiver(std::string directory) : directory_(std::move(directory)) {}

  // The response to one voicemail_deliver request: success with
  // VOICEMAIL-OFFSET = the bytes held (the size once saved), or an error.
  // `saved` gets the path when this chunk completed a message.
  Bytes handle(const proto::Message& request, std::string* saved = nullptr);

 private:
  struct Partial {
    proto::VoicemailEntry entry;
    Bytes data;
  };
  std::string directory_;
  std::map<std::pair<std::string, uint64_t>, Partial> partial_;  // (mailbox, message ID)
};

}  // namespace tsunagu::terminal
