#include "rendezvous/card_batch.hpp"

#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>

#include "base/files.hpp"
#include "cards/card_codec.hpp"
#include "cards/card_password.hpp"
#include "cards/qr_image.hpp"
#include "cards/qr_text.hpp"

namespace tsunagu::rendezvous {
namespace {

uint32_t utc_date(int64_t now) {
  std::time_t t = static_cast<std::time_t>(now);
  std::tm parts{};
  gmtime_r(&t, &parts);
  return static_cast<uint32_t>((parts.tm_year + 1900) * 10000 + (parts.tm_mon + 1) * 100 + parts.tm_mday);
}

struct SignedCard {
  IssuedCard issued;
  Bytes bytes;
};

// The LMDB ledger: the serials and the entries in one write transaction.
class LmdbBatchLedger final : public CardBatchLedger {
 public:
  LmdbBatchLedger(storage::Environment& environment, CardLedger& ledger) : environment_(environment), ledger_(ledger) {}
  Expected<uint64_t, std::string> take_serials(uint64_t count) override {
    auto txn = environment_.begin_write();
    if (!txn) return Unexpected(txn.error().detail);
    txn_.emplace(std::move(*txn));
    auto first = ledger_.allocate_serials(*txn_, count);
    if (!first) return Unexpected(first.error().detail);
    return *first;
  }
  Expected<void, std::string> add_all(const std::vector<CardAccount>& accounts) override {
    if (!txn_) return Unexpected(std::string("no serials taken"));
    for (const auto& account : accounts) {
      auto added = ledger_.add(*txn_, account);
      if (!added) return Unexpected(added.error().detail);
      if (!*added) return Unexpected("serial " + std::to_string(account.serial) + " is already in the ledger");
    }
    auto committed = txn_->commit();
    txn_.reset();
    if (!committed) return Unexpected(committed.error().detail);
    return {};
  }

 private:
  storage::Environment& environment_;
  CardLedger& ledger_;
  std::optional<storage::Transaction> txn_;
};

}  // namespace

Expected<IssuedBatch, std::string> issue_card_batch(storage::Environment& environment, CardLedger& ledger,
                                                    const CardIssuer& issuer, const CardBatch& batch,
                                                    ProgressReport& progress) {
  LmdbBatchLedger lmdb(environment, ledger);
  return issue_card_batch(lmdb, issuer, batch, progress);
}

Expected<IssuedBatch, std::string> issue_card_batch(CardBatchLedger& ledger, const CardIssuer& issuer,
                                                    const CardBatch& batch, ProgressReport& progress) {
  // The directory first: an empty directory is no card, and a directory that
  // cannot be made stops the batch before the ledger has it.
  if (auto made = make_private_directory(batch.out); !made) return Unexpected(made.error());
  // cards.tsv is the only copy of a batch's printed passwords (the ledger keeps
  // their hashes): a second batch into the same directory would replace it.
  std::string earlier_list = (std::filesystem::path(batch.out) / "cards.tsv").string();
  if (std::error_code ec; std::filesystem::exists(std::filesystem::symlink_status(earlier_list, ec)))
    return Unexpected(batch.out + " already holds a batch (" + earlier_list +
                      ", the only copy of its card passwords): give a new --out directory");
  auto first = ledger.take_serials(batch.count);
  if (!first) return Unexpected(first.error());
  // Everything in memory first (a card is about 1 KB; 10,000 of them fit).
  std::vector<SignedCard> signed_cards;
  signed_cards.reserve(batch.count);
  std::vector<CardAccount> accounts;
  accounts.reserve(batch.count);
  for (uint64_t i = 0; i < batch.count; ++i) {
    progress.show("issuing", i, batch.count);
    cards::Card card;
    card.issuer_key_id = cards::issuer_key_id(issuer.public_key);
    card.serial = *first + i;
    card.card_id = cards::CardId{utc_date(batch.now), batch.group, static_cast<uint32_t>(card.serial % 1'000'000)};
    card.expires_at = batch.now + int64_t{batch.days} * 86400;
    card.units_issued = batch.units;
    card.areas = batch.areas;
    auto bytes = cards::sign_card(card, issuer.private_key);
    if (!bytes) return Unexpected(std::string("the card cannot be signed: ") + bytes.error().detail);
    SignedCard made;
    made.bytes = std::move(*bytes);
    made.issued.serial = card.serial;
    made.issued.card_id = card.card_id.text();
    made.issued.password = cards::derive_card_password(issuer.password_secret, card.card_id);
    made.issued.file = (std::filesystem::path(batch.out) / (made.issued.card_id + ".card")).string();
    CardAccount account;
    account.serial = card.serial;
    account.card_id = made.issued.card_id;
    account.password_hash = cards::hash_card_password(made.issued.password, batch.password_hashing);
    account.units_issued = batch.units;
    account.issued_at = batch.now;
    account.expires_at = card.expires_at;
    accounts.push_back(std::move(account));
    signed_cards.push_back(std::move(made));
  }
  progress.show("issuing", batch.count, batch.count);
  if (auto added = ledger.add_all(accounts); !added)
    return Unexpected("the ledger was not written (" + added.error() + "); no card file was written");

  // The ledger holds them now: the files.
  IssuedBatch result;
  auto written_up_to = [&](size_t done) {
    std::string note = "; the ledger holds serials " + std::to_string(*first) + "-" +
                       std::to_string(*first + batch.count - 1) + ", and the files of " + std::to_string(done) +
                       " of them were written: `card revoke` the others";
    return note;
  };
  std::ostringstream listing;
  listing << "serial\tcard_id\tpassword\tfile\n";
  for (size_t i = 0; i < signed_cards.size(); ++i) {
    progress.show("writing", i, signed_cards.size());
    const SignedCard& made = signed_cards[i];
    if (auto written = write_file_atomically(made.issued.file, std::string(as_chars(made.bytes)), 0644); !written)
      return Unexpected(written.error() + written_up_to(i));
    std::string image = made.issued.file.substr(0, made.issued.file.size() - 5) + ".png";
    if (auto png = cards::write_qr_png(cards::encode_qr_text(made.bytes), image); !png)
      result.images_missed.push_back(image + " not written: " + png.error());
    listing << made.issued.serial << "\t" << made.issued.card_id << "\t" << made.issued.password << "\t"
            << made.issued.file << "\n";
    result.cards.push_back(made.issued);
  }
  progress.show("writing", signed_cards.size(), signed_cards.size());
  progress.done();
  result.list_file = (std::filesystem::path(batch.out) / "cards.tsv").string();
  if (auto written = write_file_atomically(result.list_file, listing.str(), 0600); !written)
    return Unexpected(written.error() + written_up_to(signed_cards.size()));
  return result;
}

}  // namespace tsunagu::rendezvous
