// The node's voicemail in cluster mode (`tsunagu-rendezvous run --pg`):
// rendezvous::VoicemailBoxes on PostgreSQL's `voicemail` and
// `voicemail_data` tables, so a message left on one node is listed, fetched
// and deleted on whichever node its owner logs in to (docs/cluster.md).
//
// Reads (a mailbox's usage, the list, a message's header and a chunk of its
// recording) are blocking statements on the account directory's read
// connection (PgReader), one round trip each. Storing and deleting a message
// join the loop turn's group commit through the account directory
// (PgAccountDirectory::write_done), so their replies leave after the COMMIT.
// A new message's ID is taken from the table's sequence on the read
// connection first (one round trip), so the reply can carry it; a delete
// checks the message is there on the read connection, then deletes it in
// the turn. The retention sweep deletes on the read connection (autocommit):
// no reply waits on it.
#pragma once

#include <memory>

#include "cluster/pg/pg_account_directory.hpp"
#include "cluster/pg/pg_reader.hpp"
#include "rendezvous/voicemail_boxes.hpp"

namespace tsunagu::cluster {

class PgVoicemailBoxes final : public rendezvous::VoicemailBoxes {
 public:
  // `accounts` (its read connection and its turn) must outlive this.
  explicit PgVoicemailBoxes(PgAccountDirectory& accounts) : accounts_(accounts), reader_(accounts.reader()) {}

  Expected<Usage, StoreError> usage(std::string_view mailbox) override;
  Expected<Totals, StoreError> totals(std::string_view domain) override;
  Expected<std::vector<proto::VoicemailEntry>, StoreError> list(std::string_view mailbox, uint64_t after,
                                                                size_t limit) override;
  Expected<std::optional<proto::VoicemailEntry>, StoreError> find(std::string_view mailbox, uint64_t id) override;
  Expected<std::optional<Bytes>, StoreError> read(std::string_view mailbox, uint64_t id, uint64_t offset,
                                                  size_t max) override;
  Expected<uint64_t, StoreError> add(std::string_view mailbox, std::string_view caller, uint64_t time,
                                     ByteView data) override;
  Expected<bool, StoreError> remove(std::string_view mailbox, uint64_t id) override;
  Expected<size_t, StoreError> expire(uint64_t older_than, size_t max) override;

 private:
  PgAccountDirectory& accounts_;
  std::shared_ptr<PgReader> reader_;
};

}  // namespace tsunagu::cluster
