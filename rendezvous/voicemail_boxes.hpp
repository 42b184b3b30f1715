// What the node (NodeCore) asks of the voicemail mailboxes, wherever they
// live: the node's own LMDB (VoicemailStore in the loop turn's transaction,
// the embedded default) or PostgreSQL shared by a cluster of nodes
// (cluster/pg/pg_voicemail_boxes.hpp), so a message left on one node is
// delivered when its owner logs in on any. Reads answer at once. Writes join
// the current loop turn and are durable only once the turn is: NodeCore
// holds their replies until then (AccountDirectory::commit_turn).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "proto/directory_records.hpp"
#include "rendezvous/voicemail_store.hpp"

namespace tsunagu::rendezvous {

class VoicemailBoxes {
 public:
  using StoreError = storage::StoreError;
  using Usage = VoicemailStore::Usage;
  using Totals = VoicemailStore::Totals;
  virtual ~VoicemailBoxes() = default;

  virtual Expected<Usage, StoreError> usage(std::string_view mailbox) = 0;
  // What all mailboxes hold, and those of "...@domain" (domain empty: none).
  virtual Expected<Totals, StoreError> totals(std::string_view domain) = 0;
  // Messages with IDs > after, oldest first, at most `limit`.
  virtual Expected<std::vector<proto::VoicemailEntry>, StoreError> list(std::string_view mailbox, uint64_t after,
                                                                        size_t limit) = 0;
  virtual Expected<std::optional<proto::VoicemailEntry>, StoreError> find(std::string_view mailbox, uint64_t id) = 0;
  // Up to `max` bytes of a message from `offset`; nullopt: no such message.
  virtual Expected<std::optional<Bytes>, StoreError> read(std::string_view mailbox, uint64_t id, uint64_t offset,
                                                          size_t max) = 0;
  // Stores a message in this turn and returns its ID.
  virtual Expected<uint64_t, StoreError> add(std::string_view mailbox, std::string_view caller, uint64_t time,
                                             ByteView data) = 0;
  // Deletes a message in this turn; false when there was no such message.
  virtual Expected<bool, StoreError> remove(std::string_view mailbox, uint64_t id) = 0;
  // Deletes up to `max` messages left before `older_than` (Unix seconds);
  // returns how many went.
  virtual Expected<size_t, StoreError> expire(uint64_t older_than, size_t max) = 0;
};

}  // namespace tsunagu::rendezvous
