#include "node/card_commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "base/files.hpp"
#include "base/toml_reader.hpp"
#include "cards/areas_file.hpp"
#include "cards/card_codec.hpp"
#include "cards/card_password.hpp"
#include "cards/qr_image.hpp"
#include "cards/qr_text.hpp"
#include "cluster/pg/pg_card_admin.hpp"
#include "cluster/pg/pg_migrations.hpp"
#include "rendezvous/account_store.hpp"
#include "base/progress.hpp"
#include "rendezvous/card_batch.hpp"
#include "rendezvous/card_issuer.hpp"
#include "rendezvous/card_ledger.hpp"
#include "node/node_config.hpp"

namespace tsunagu::rendezvous {

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_no_card = 3;

int fail(std::string_view message, int code = exit_failure) {
  std::cerr << "tsunagu-rendezvous: " << message << "\n";
  return code;
}

// The deployment's node.toml, and its ledger: the LMDB one, or with --pg
// the cluster's PostgreSQL (nothing opened in the deployment's LMDB).
struct Deployment {
  NodeConfig config;
  std::unique_ptr<AccountStore> store;
  CardLedger ledger;
  std::unique_ptr<cluster::PgConnection> pg;
};

Expected<Deployment, int> open_deployment(const std::string& directory, const std::string& pg_conninfo) {
  Deployment d;
  try {
    d.config = load_node_config(directory);
  } catch (const std::exception& error) {
    return Unexpected(fail(error.what(), exit_usage));
  }
  if (!pg_conninfo.empty()) {
    auto connection = cluster::PgConnection::connect(pg_conninfo);
    if (!connection) return Unexpected(fail("PostgreSQL: " + connection.error().detail));
    if (auto current = cluster::require_current_schema(**connection); !current)
      return Unexpected(fail("PostgreSQL: " + current.error().detail));
    d.pg = std::move(*connection);
    return d;
  }
  auto store = AccountStore::open(d.config.database_directory, d.config.map_size);
  if (!store) return Unexpected(fail("storage: " + store.error().detail));
  d.store = std::move(*store);
  auto ledger = CardLedger::open(d.store->environment());
  if (!ledger) return Unexpected(fail("storage: " + ledger.error().detail));
  d.ledger = *ledger;
  return d;
}

// `card issue --pg`: serials from card_take_serials(), the entries in one transaction.
class PgBatchLedger final : public CardBatchLedger {
 public:
  explicit PgBatchLedger(cluster::PgConnection& connection) : connection_(connection) {}
  Expected<uint64_t, std::string> take_serials(uint64_t count) override {
    return cluster::pg_take_card_serials(connection_, count);
  }
  Expected<void, std::string> add_all(const std::vector<CardAccount>& accounts) override {
    return cluster::pg_add_cards(connection_, accounts);
  }

 private:
  cluster::PgConnection& connection_;
};

std::string utc_time(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm parts{};
  gmtime_r(&t, &parts);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M:%SZ", &parts);
  return out;
}

std::optional<uint64_t> parse_serial(std::string_view text) {
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::stoull(std::string(text));
}

// 480 -> "08:00".
std::string clock_text(int minutes) {
  char out[16];  // room for any int: -Wformat-truncation cannot know minutes < 1440
  std::snprintf(out, sizeof out, "%02d:%02d", minutes / 60, minutes % 60);
  return out;
}

void print_access_points(const char* kind, const std::vector<cards::AccessPoint>& points) {
  for (const cards::AccessPoint& p : points) {
    std::cout << "    " << kind << " " << p.name << "  node " << p.node << "  " << p.cost_per_minute << "/min";
    for (const cards::TariffBand& band : p.tariff)
      std::cout << "  [" << clock_text(band.start_minute) << "-" << clock_text(band.end_minute) << " "
                << band.cost_per_minute << "/min]";
    for (const std::string& relay : p.relays) std::cout << "  " << relay;
    if (!p.destinations.empty()) {
      std::cout << "  reaches";
      for (const std::string& prefix : p.destinations) std::cout << " " << prefix << "*";
    }
    std::cout << "\n";
  }
}

void print_areas(const cards::Card& card) {
  for (const cards::Area& area : card.areas) {
    std::cout << "  area " << area.code << "\n";
    print_access_points("internet", area.internet);
    print_access_points("premium ", area.premium);
    print_access_points("agent   ", area.agents);
  }
}

void print_card(const cards::Card& card) {
  std::cout << "serial       " << card.serial << "\n"
            << "card ID      " << card.card_id.text() << "\n"
            << "issuer key   " << to_hex(card.issuer_key_id) << "\n"
            << "expires      " << utc_time(card.expires_at) << "\n"
            << "units issued " << card.units_issued << " (display only; the ledger decides)\n";
  print_areas(card);
}

class Commands final : public CardCommands {
 public:
  Commands(CLI::App& app, std::string& directory) {
    card_ = app.add_subcommand("card", "Issue and manage access cards (docs/cards.md)");
    card_->require_subcommand(1);
    card_->add_option("-d,--dir", directory, "Deployment directory");
    card_->add_option("--pg", pg_,
                      "The card ledger in a cluster's PostgreSQL (libpq connection string or URI) instead of the "
                      "deployment's LMDB: issue, show, topup, revoke and publish (docs/cluster.md)");

    issue_ = card_->add_subcommand("issue", "Issue cards: DIR/<card ID>.card and .png, ledger entries, passwords");
    issue_->add_option("--units", units_, "Units each card starts with")->required()->check(CLI::Range(1, 1000000000));
    issue_->add_option("--areas", areas_file_, "The area table (areas.toml)")->required();
    issue_->add_option("--group", group_, "Group number in the card ID (0-9999)")->required()->check(CLI::Range(0, 9999));
    issue_->add_option("--count", count_, "How many cards (1-10000)")->check(CLI::Range(1, 10000));
    issue_->add_option("--days", days_, "Days until the cards expire (1-3660)")->check(CLI::Range(1, 3660));
    issue_->add_option("--out", out_, "Directory to write the cards into (created 0700; not one holding an earlier batch's cards.tsv)")->required();
    issue_->add_flag("--no-progress", no_progress_,
                     "Show no progress (otherwise a bar on a terminal, a line at every tenth when stderr is not one)");

    show_ = card_->add_subcommand("show", "Show a card file (verified) or a serial's ledger entry and history");
    show_->add_option("FILE|SERIAL", target_, "A .card file, a file holding TSU1: text, or a serial")->required();

    revoke_ = card_->add_subcommand("revoke", "Revoke a card: the node refuses it from now on");
    revoke_->add_option("SERIAL", target_, "Card serial")->required();
    revoke_->add_option("--note", note_, "Why (kept in the ledger history)");

    top_up_ = card_->add_subcommand("topup", "Add units to a card");
    top_up_->add_option("SERIAL", target_, "Card serial")->required();
    top_up_->add_option("UNITS", units_, "Units to add")->required()->check(CLI::Range(1, 1000000000));
    top_up_->add_option("--note", note_, "Where the units were paid (kept in the ledger history)");

    rekey_ = card_->add_subcommand("rekey", "New issuer key; cards signed with the old one stay valid until they expire");
    keys_ = card_->add_subcommand("keys", "Print the issuer public keys this deployment's cards verify under");

    publish_ = card_->add_subcommand(
        "publish", "Sign the next update terminals are given: every revoked serial, and an area table replacing the cards'");
    publish_->add_option("--areas", areas_file_,
                         "The new area table (areas.toml); default: the last update's (none at the first)");
  }

  bool parsed() const override { return card_->parsed(); }
  std::string audit_target() const override {
    if (issue_->parsed()) return "group " + std::to_string(group_) + " count " + std::to_string(count_);
    if (revoke_->parsed() || top_up_->parsed()) return target_;
    if (rekey_->parsed()) return "issuer key";
    if (publish_->parsed()) return "update";
    return "";
  }

  int run(const std::string& directory) override {
    if (issue_->parsed()) return issue(directory);
    if (show_->parsed()) return show(directory);
    if (rekey_->parsed() || keys_->parsed()) return keys(directory);
    if (publish_->parsed()) return publish(directory);
    return change(directory);
  }

 private:
  int issue(const std::string& directory) {
    std::vector<cards::Area> areas;
    try {
      areas = cards::load_areas_file(areas_file_);
    } catch (const ConfigFileError& error) {
      return fail(error.what(), exit_usage);
    }
    auto deployment = open_deployment(directory, pg_);
    if (!deployment) return deployment.error();
    auto issuer = load_card_issuer(directory, true);
    if (!issuer) return fail(issuer.error());
    CardBatch batch;
    batch.units = units_;
    batch.areas = std::move(areas);
    batch.group = group_;
    batch.count = count_;
    batch.days = days_;
    batch.out = out_;
    batch.now = static_cast<int64_t>(std::time(nullptr));
    batch.password_hashing = deployment->config.settings.password_hashing;
    // Each card's password hash is a scrypt run: a batch of thousands takes minutes.
    ProgressReport progress(progress_style_for(stderr, false, no_progress_));
    auto issued = deployment->pg ? [&] {
      PgBatchLedger pg_ledger(*deployment->pg);
      return issue_card_batch(pg_ledger, *issuer, batch, progress);
    }()
                                 : issue_card_batch(deployment->store->environment(), deployment->ledger, *issuer,
                                                    batch, progress);
    progress.done();
    if (!issued) return fail(issued.error());
    for (const auto& missed : issued->images_missed) std::cerr << "tsunagu-rendezvous: " << missed << "\n";
    std::cout << "serial\tcard_id\tpassword\tfile\n";
    for (const auto& card : issued->cards)
      std::cout << card.serial << "\t" << card.card_id << "\t" << card.password << "\t" << card.file << "\n";
    std::cout << "issued " << count_ << " card(s) with " << units_ << " units; list (with passwords, 0600) in "
              << issued->list_file << "\n";
    return 0;
  }

  int show(const std::string& directory) {
    if (auto serial = parse_serial(target_); serial && !std::filesystem::exists(target_))
      return show_ledger(directory, *serial);
    auto text = read_text_file(target_, cards::max_qr_text_size + 2);
    if (!text) return fail(text.error(), exit_usage);
    Bytes bytes = to_bytes(*text);
    if (text->starts_with(cards::qr_text_prefix)) {
      auto decoded = cards::decode_qr_text(*text);
      if (!decoded) return fail(std::string("QR text: ") + decoded.error().detail, exit_usage);
      bytes = std::move(*decoded);
    }
    std::vector<cards::TrustedIssuer> trusted;
    if (auto issuer = load_card_issuer(directory, false)) trusted = issuer->trusted;
    auto card = cards::decode_card(bytes, trusted, static_cast<int64_t>(std::time(nullptr)));
    if (card) {
      std::cout << "valid: signed by this deployment's issuer key "
                << (card->issuer_key_id == trusted.front().key_id ? "(current)" : "(retired)") << "\n";
      print_card(*card);
      show_ledger(directory, card->serial);
      return 0;
    }
    std::cout << "NOT VALID: " << cards::card_error_label(card.error().code) << " (" << card.error().detail << ")\n";
    if (auto envelope = cards::read_envelope(bytes)) {
      if (auto unverified = cards::parse_card_payload(envelope->payload)) {
        std::cout << "what it claims (unverified):\n";
        print_card(*unverified);
      }
    }
    return exit_failure;
  }

  int show_ledger(const std::string& directory, uint64_t serial) {
    auto deployment = open_deployment(directory, pg_);
    if (!deployment) return deployment.error();
    if (deployment->pg) {
      auto account = cluster::pg_find_card(*deployment->pg, serial);
      if (!account) return fail(account.error());
      auto history = cluster::pg_card_history(*deployment->pg, serial, 0, 1000);
      if (!history) return fail(history.error());
      return print_ledger(serial, *account, *history);
    }
    auto txn = deployment->store->environment().begin_read();
    if (!txn) return fail(txn.error().detail);
    auto account = deployment->ledger.find(*txn, serial);
    if (!account) return fail(account.error().detail);
    auto history = deployment->ledger.history(*txn, serial, 0, 1000);
    if (!history) return fail(history.error().detail);
    return print_ledger(serial, *account, *history);
  }

  static int print_ledger(uint64_t serial, const std::optional<CardAccount>& account,
                          const std::vector<CardEvent>& history) {
    if (!account) {
      std::cout << "ledger: no card with serial " << serial << "\n";
      return exit_no_card;
    }
    const CardAccount& a = *account;
    std::cout << "ledger: serial " << a.serial << "  card ID " << a.card_id << "  units left " << a.units_left
              << " of " << a.units_issued << " issued  expires " << utc_time(a.expires_at)
              << (a.revoked ? "  REVOKED " + utc_time(a.revoked_at) : std::string()) << "\n";
    for (const CardEvent& e : history)
      std::cout << "  " << utc_time(e.time) << "  " << card_event_name(e.kind) << "  " << e.units << "  left "
                << e.units_left << (e.note.empty() ? "" : "  " + e.note) << "\n";
    return 0;
  }

  int keys(const std::string& directory) {
    auto issuer = rekey_->parsed() ? rekey_card_issuer(directory) : load_card_issuer(directory, false);
    if (!issuer) return fail(issuer.error());
    for (size_t i = 0; i < issuer->trusted.size(); ++i)
      std::cout << (i == 0 ? "current " : "retired ") << to_hex(issuer->trusted[i].key_id) << " "
                << to_hex(issuer->trusted[i].public_key) << "\n";
    return 0;
  }

  int change(const std::string& directory) {
    auto serial = parse_serial(target_);
    if (!serial) return fail("\"" + target_ + "\" is not a serial number", exit_usage);
    auto deployment = open_deployment(directory, pg_);
    if (!deployment) return deployment.error();
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    std::optional<storage::Transaction> txn;
    Expected<LedgerResult, std::string> result = LedgerResult{};
    if (deployment->pg) {
      // One transaction each, the card's row locked (cluster/pg/pg_card_admin.hpp).
      result = revoke_->parsed() ? cluster::pg_revoke_card(*deployment->pg, *serial, now, note_)
                                 : cluster::pg_top_up_card(*deployment->pg, *serial, units_, now, note_);
    } else {
      auto begun = deployment->store->environment().begin_write();
      if (!begun) return fail(begun.error().detail);
      txn.emplace(std::move(*begun));
      auto changed = revoke_->parsed() ? deployment->ledger.revoke(*txn, *serial, now, note_)
                                       : deployment->ledger.top_up(*txn, *serial, units_, now, note_);
      if (changed) result = *changed;
      else result = Unexpected(changed.error().detail);
    }
    if (!result) return fail(result.error());
    if (result->outcome == LedgerOutcome::unknown_card)
      return fail("no card with serial " + target_, exit_no_card);
    if (result->outcome != LedgerOutcome::done)
      return fail("card " + target_ + ": " + ledger_outcome_name(result->outcome));
    if (txn)
      if (auto committed = txn->commit(); !committed) return fail(committed.error().detail);
    if (revoke_->parsed()) {
      std::cout << "card " << *serial << " revoked\n";
      // Terminals learn it from the next update the node serves.
      return publish(directory);
    }
    std::cout << "card " << *serial << ": " << result->units << " units added, " << result->units_left << " left\n";
    return 0;
  }

  // The next signed update for terminals (rendezvous/card_issuer.hpp): the
  // ledger's revoked serials, and --areas or the last update's table.
  int publish(const std::string& directory) {
    std::optional<std::vector<cards::Area>> areas;
    if (!areas_file_.empty()) {
      try {
        areas = cards::load_areas_file(areas_file_);
      } catch (const ConfigFileError& error) {
        return fail(error.what(), exit_usage);
      }
    }
    auto issuer = load_card_issuer(directory, false);
    if (!issuer) return fail(issuer.error());
    auto deployment = open_deployment(directory, pg_);
    if (!deployment) return deployment.error();
    std::vector<uint64_t> revoked;
    if (deployment->pg) {
      auto serials = cluster::pg_revoked_card_serials(*deployment->pg);
      if (!serials) return fail(serials.error());
      revoked = std::move(*serials);
    } else {
      auto txn = deployment->store->environment().begin_read();
      if (!txn) return fail(txn.error().detail);
      auto serials = deployment->ledger.revoked_serials(*txn);
      if (!serials) return fail(serials.error().detail);
      revoked = std::move(*serials);
    }
    auto update = publish_card_update(directory, *issuer, std::move(areas), std::move(revoked),
                                      static_cast<int64_t>(std::time(nullptr)));
    if (!update) return fail(update.error());
    std::cout << "update version " << update->version << ": " << update->revoked.size() << " revoked serial(s), "
              << (update->areas.empty() ? std::string("the cards' own area tables")
                                        : std::to_string(update->areas.size()) + " area(s) replacing the cards'")
              << "; written to " << card_update_path(directory) << ", served by the node to terminals\n";
    return 0;
  }

  CLI::App* card_ = nullptr;
  CLI::App* publish_ = nullptr;
  CLI::App* issue_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* revoke_ = nullptr;
  CLI::App* top_up_ = nullptr;
  CLI::App* rekey_ = nullptr;
  CLI::App* keys_ = nullptr;
  uint64_t units_ = 0;
  std::string areas_file_;
  uint32_t group_ = 0;
  uint64_t count_ = 1;
  uint32_t days_ = 365;
  std::string out_;
  std::string target_;
  std::string note_;
  std::string pg_;
  bool no_progress_ = false;
};

}  // namespace

std::unique_ptr<CardCommands> add_card_commands(CLI::App& app, std::string& directory) {
  return std::make_unique<Commands>(app, directory);
}

}  // namespace tsunagu::rendezvous
