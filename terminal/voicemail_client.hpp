// The terminal's side of voicemail (docs/voicemail.md): leaving a message
// (begin, chunks, finish) and taking delivery of one's own (list, fetch, save
// into the mailbox folder, then acknowledge with delete). Runs on a logged-in
// NodeClient; each operation ends with one `done` callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proto/directory_records.hpp"
#include "terminal/node_client.hpp"

namespace tsunagu::terminal {

// How a voicemail operation ended. code 0: success; otherwise the node's
// error code (reason is its text), or 1 with reason set for a local or network failure.
struct VoicemailOutcome {
  uint16_t code = 0;
  std::string reason;
  uint64_t id = 0;  // send: the stored message's ID
};

// Uploads `data` for `callee` in chunks of proto::max_voicemail_chunk, a few
// in flight at once. Done once the node has stored it durably (or refused).
void send_voicemail(NodeClient& client, const std::string& callee, Bytes data,
                    std::function<void(const VoicemailOutcome&)> done);

// Lists the whole mailbox (page after page).
void list_voicemail(NodeClient& client,
                    std::function<void(const VoicemailOutcome&, std::vector<proto::VoicemailEntry>)> done);

struct DeliveryResult {
  VoicemailOutcome outcome;            // the first failure, if any
  std::vector<std::string> saved;      // paths written
  std::vector<uint64_t> acknowledged;  // IDs deleted on the node
};

// Fetches each message (all when `only` is empty), saves it in `directory`
// (a temporary file, fsync, rename; the same message always gets the same
// name, so a repeated delivery replaces the file instead of adding one), and
// when `acknowledge` is set deletes it on the node after it is saved.
void deliver_voicemail(NodeClient& client, const std::string& directory, std::vector<uint64_t> only, bool acknowledge,
                       std::function<void(const DeliveryResult&)> done);

void delete_voicemail(NodeClient& client, uint64_t id, std::function<void(const VoicemailOutcome&)> done);

// "20260122-101500-alice-17.msg": when (UTC), who, and the message ID.
std::string voicemail_file_name(const proto::VoicemailEntry& entry);

}  // namespace tsunagu::terminal
