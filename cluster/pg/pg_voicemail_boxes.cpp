#include "cluster/pg/pg_voicemail_boxes.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

namespace tsunagu::cluster {

using rendezvous::VoicemailBoxes;

namespace {

using proto::VoicemailEntry;

constexpr uint64_t max_id = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

PgError bad_row(std::string_view what) { return PgError{PgErrc::bad_result, "", "unreadable row: " + std::string(what)}; }

Expected<uint64_t, PgError> number(const PgRows& rows, size_t row, std::string_view column) {
  auto value = rows.integer(row, column);
  if (!value || *value < 0) return Unexpected(bad_row(column));
  return static_cast<uint64_t>(*value);
}

Expected<VoicemailEntry, PgError> entry_from_row(const PgRows& rows, size_t row) {
  auto id = number(rows, row, "id");
  auto time = number(rows, row, "time");
  auto size = number(rows, row, "size");
  auto caller = rows.text(row, "sender");
  if (!id || !time || !size || !caller) return Unexpected(bad_row("voicemail"));
  return VoicemailEntry{*id, *time, *size, std::move(*caller)};
}

Expected<VoicemailBoxes::Usage, PgError> usage_from_row(const PgRows& rows, std::string_view messages,
                                                        std::string_view bytes) {
  auto count = number(rows, 0, messages);
  auto total = number(rows, 0, bytes);
  if (!count || !total) return Unexpected(bad_row("voicemail usage"));
  return VoicemailBoxes::Usage{*count, *total};
}

}  // namespace

Expected<VoicemailBoxes::Usage, storage::StoreError> PgVoicemailBoxes::usage(std::string_view mailbox) {
  return reader_->read<Usage>([&](PgTurn& turn, PgDone<Usage> done) {
    queue_statement<Usage>(turn,
                           "SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes FROM voicemail "
                           "WHERE recipient = $1",
                           {std::string(mailbox)}, std::move(done),
                           [](const PgRows& rows) { return usage_from_row(rows, "messages", "bytes"); });
  });
}

Expected<VoicemailBoxes::Totals, storage::StoreError> PgVoicemailBoxes::totals(std::string_view domain) {
  // The suffix compared with right(), not LIKE: a domain's '_' is no wildcard.
  std::string suffix = domain.empty() ? std::string() : "@" + std::string(domain);
  return reader_->read<Totals>([&](PgTurn& turn, PgDone<Totals> done) {
    queue_statement<Totals>(
        turn,
        "SELECT count(*) AS messages, coalesce(sum(size), 0) AS bytes, "
        "count(*) FILTER (WHERE $1 <> '' AND right(recipient, length($1)) = $1) AS domain_messages, "
        "coalesce(sum(size) FILTER (WHERE $1 <> '' AND right(recipient, length($1)) = $1), 0) AS domain_bytes "
        "FROM voicemail",
        {suffix}, std::move(done), [](const PgRows& rows) -> Expected<Totals, PgError> {
          auto all = usage_from_row(rows, "messages", "bytes");
          auto in_domain = usage_from_row(rows, "domain_messages", "domain_bytes");
          if (!all || !in_domain) return Unexpected(bad_row("voicemail totals"));
          return Totals{*all, *in_domain};
        });
  });
}

Expected<std::vector<VoicemailEntry>, storage::StoreError> PgVoicemailBoxes::list(std::string_view mailbox,
                                                                                 uint64_t after, size_t limit) {
  if (after >= max_id || limit == 0) return std::vector<VoicemailEntry>{};
  using Entries = std::vector<VoicemailEntry>;
  return reader_->read<Entries>([&](PgTurn& turn, PgDone<Entries> done) {
    queue_statement<Entries>(turn,
                             "SELECT id, time, size, sender FROM voicemail WHERE recipient = $1 AND id > $2::bigint "
                             "ORDER BY id LIMIT $3::bigint",
                             {std::string(mailbox), std::to_string(after), std::to_string(limit)}, std::move(done),
                             [](const PgRows& rows) -> Expected<Entries, PgError> {
                               Entries entries;
                               for (size_t row = 0; row < rows.rows.size(); ++row) {
                                 auto entry = entry_from_row(rows, row);
                                 if (!entry) return Unexpected(entry.error());
                                 entries.push_back(std::move(*entry));
                               }
                               return entries;
                             });
  });
}

Expected<std::optional<VoicemailEntry>, storage::StoreError> PgVoicemailBoxes::find(std::string_view mailbox,
                                                                                   uint64_t id) {
  using Found = std::optional<VoicemailEntry>;
  if (id > max_id) return Found{};
  return reader_->read<Found>([&](PgTurn& turn, PgDone<Found> done) {
    queue_statement<Found>(turn,
                           "SELECT id, time, size, sender FROM voicemail WHERE id = $1::bigint AND recipient = $2",
                           {std::to_string(id), std::string(mailbox)}, std::move(done),
                           [](const PgRows& rows) -> Expected<Found, PgError> {
                             if (rows.rows.empty()) return Found{};
                             auto entry = entry_from_row(rows, 0);
                             if (!entry) return Unexpected(entry.error());
                             return Found(std::move(*entry));
                           });
  });
}

Expected<std::optional<Bytes>, storage::StoreError> PgVoicemailBoxes::read(std::string_view mailbox, uint64_t id,
                                                                          uint64_t offset, size_t max) {
  using Chunk = std::optional<Bytes>;
  if (id > max_id) return Chunk{};
  // substring() counts from 1 and takes int positions (a recording is far
  // below 2 GiB); an offset past the end gives an empty chunk, as on LMDB.
  constexpr uint64_t max_position = std::numeric_limits<int32_t>::max();
  uint64_t from = std::min(offset, max_position - 1) + 1;
  max = std::min<size_t>(max, max_position);
  return reader_->read<Chunk>([&](PgTurn& turn, PgDone<Chunk> done) {
    queue_statement<Chunk>(turn,
                           "SELECT substring(d.data FROM $3::int FOR $4::int) AS chunk FROM voicemail v "
                           "JOIN voicemail_data d ON d.id = v.id WHERE v.id = $1::bigint AND v.recipient = $2",
                           {std::to_string(id), std::string(mailbox), std::to_string(from), std::to_string(max)},
                           std::move(done), [](const PgRows& rows) -> Expected<Chunk, PgError> {
                             if (rows.rows.empty()) return Chunk{};
                             auto text = rows.text(0, "chunk");
                             auto bytes = text ? decode_bytea_hex(*text) : std::nullopt;
                             if (!bytes) return Unexpected(bad_row("voicemail_data"));
                             auto begin = reinterpret_cast<const std::byte*>(bytes->data());
                             return Chunk(Bytes(begin, begin + bytes->size()));
                           });
  });
}

Expected<uint64_t, storage::StoreError> PgVoicemailBoxes::add(std::string_view mailbox, std::string_view caller,
                                                              uint64_t time, ByteView data) {
  // The ID first, so the reply that waits for the commit can carry it; a
  // sequence hands each value out once, committed or not.
  auto id = reader_->read<uint64_t>([&](PgTurn& turn, PgDone<uint64_t> done) {
    queue_statement<uint64_t>(turn, "SELECT nextval(pg_get_serial_sequence('voicemail', 'id')) AS id", {},
                              std::move(done), [](const PgRows& rows) { return number(rows, 0, "id"); });
  });
  if (!id) return Unexpected(id.error());
  // One statement: a turn retried without a refused statement never holds a
  // header without its recording.
  queue_statement<void>(accounts_.committer().turn(),
                        "WITH header AS (INSERT INTO voicemail (id, recipient, sender, time, size) "
                        "VALUES ($1::bigint, $2, $3, $4::bigint, $5::bigint)) "
                        "INSERT INTO voicemail_data (id, data) VALUES ($1::bigint, $6::bytea)",
                        {std::to_string(*id), std::string(mailbox), std::string(caller), std::to_string(time),
                         std::to_string(data.size()), encode_bytea_hex(data)},
                        accounts_.write_done<void>(), [](const PgRows&) -> Expected<void, PgError> { return {}; });
  return *id;
}

Expected<bool, storage::StoreError> PgVoicemailBoxes::remove(std::string_view mailbox, uint64_t id) {
  auto found = find(mailbox, id);
  if (!found) return Unexpected(found.error());
  if (!found->has_value()) return false;
  // Deleted by another node meanwhile: the DELETE finds nothing, and the
  // owner's acknowledgement holds all the same.
  queue_statement<void>(accounts_.committer().turn(), "DELETE FROM voicemail WHERE id = $1::bigint AND recipient = $2",
                        {std::to_string(id), std::string(mailbox)}, accounts_.write_done<void>(),
                        [](const PgRows&) -> Expected<void, PgError> { return {}; });
  return true;
}

Expected<size_t, storage::StoreError> PgVoicemailBoxes::expire(uint64_t older_than, size_t max) {
  auto removed = reader_->read<uint64_t>([&](PgTurn& turn, PgDone<uint64_t> done) {
    queue_statement<uint64_t>(turn,
                              "DELETE FROM voicemail WHERE id IN (SELECT id FROM voicemail WHERE time < $1::bigint "
                              "ORDER BY id LIMIT $2::bigint)",
                              {std::to_string(std::min(older_than, max_id)), std::to_string(max)}, std::move(done),
                              [](const PgRows& rows) -> Expected<uint64_t, PgError> { return rows.affected; });
  });
  if (!removed) return Unexpected(removed.error());
  return static_cast<size_t>(*removed);
}

}  // namespace tsunagu::cluster
