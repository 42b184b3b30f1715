// Voicemail mailboxes in LMDB, beside the accounts. Callers pass the
// transaction so the node can group-commit (one write transaction per loop
// turn, replies after the commit): a message is acknowledged to its caller
// only once it is durable, and deleted only when its owner acknowledges it.
//
// Databases: "voicemail" (mailbox NUL be64(id) -> header record),
// "voicemail_data" (same key -> the message's bytes), "voicemail_meta"
// ("next_id" -> be64, so an ID is never reused, even after deletions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/directory_records.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

// The durable header: a version byte, then proto::encode_voicemail_entry.
inline constexpr size_t max_voicemail_record_size = 1 + proto::max_directory_record_size;
Bytes encode_voicemail_record(const proto::VoicemailEntry& entry);
std::optional<proto::VoicemailEntry> decode_voicemail_record(ByteView bytes);

class VoicemailStore {
 public:
  using StoreError = storage::StoreError;
  using Transaction = storage::Transaction;
  static Expected<VoicemailStore, StoreError> open(storage::Environment& env);

  struct Usage {
    uint64_t messages = 0;
    uint64_t bytes = 0;
  };
  Expected<Usage, StoreError> usage(Transaction& txn, std::string_view mailbox);
  // What the whole store holds, and what the mailboxes "...@domain" hold
  // together (domain empty: none). A scan of every header: O(messages).
  struct Totals {
    Usage all;
    Usage domain;
  };
  Expected<Totals, StoreError> totals(Transaction& txn, std::string_view domain);
  // Messages with IDs > after, oldest first, at most `limit`.
  Expected<std::vector<proto::VoicemailEntry>, StoreError> list(Transaction& txn, std::string_view mailbox,
                                                                uint64_t after, size_t limit);
  // Stores a message and returns its ID.
  Expected<uint64_t, StoreError> add(Transaction& txn, std::string_view mailbox, std::string_view caller,
                                     uint64_t time, ByteView data);
  Expected<std::optional<proto::VoicemailEntry>, StoreError> find(Transaction& txn, std::string_view mailbox,
                                                                  uint64_t id);
  // Up to `max` bytes of a message from `offset`; a view into the map, valid
  // until the transaction ends or writes. nullopt: no such message.
  Expected<std::optional<ByteView>, StoreError> read(Transaction& txn, std::string_view mailbox, uint64_t id,
                                                     uint64_t offset, size_t max);
  // false when there was no such message.
  Expected<bool, StoreError> remove(Transaction& txn, std::string_view mailbox, uint64_t id);
  // Deletes every message of `mailbox` (its account was removed); returns how many went.
  Expected<size_t, StoreError> remove_mailbox(Transaction& txn, std::string_view mailbox);
  // Deletes the messages of every mailbox inside an agent's route (ID@DOMAIN
  // for a domain, IDs starting with a +PREFIX), when the agent's enrolment
  // ends: whoever may register those IDs next must not read them.
  Expected<size_t, StoreError> remove_mailboxes_inside(Transaction& txn, std::string_view route);
  // Deletes up to `max` messages left before `older_than` (Unix seconds);
  // returns how many went.
  Expected<size_t, StoreError> expire(Transaction& txn, uint64_t older_than, size_t max);

 private:
  Expected<size_t, StoreError> erase_all(Transaction& txn, const std::vector<Bytes>& keys);
  storage::DatabaseHandle headers_ = 0;
  storage::DatabaseHandle data_ = 0;
  storage::DatabaseHandle meta_ = 0;
};

}  // namespace tsunagu::rendezvous
