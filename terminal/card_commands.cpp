#include "terminal/card_commands.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "base/password_input.hpp"
#include "base/toml_reader.hpp"
#include "cards/call_charge.hpp"
#include "cards/card_codec.hpp"
#include "cards/card_password.hpp"
#include "cards/least_cost_router.hpp"
#include "cards/qr_scan.hpp"
#include "cards/qr_text.hpp"
#include "cards/relay_uri.hpp"
#include "cards/route_memory.hpp"
#include "proto/signalling.hpp"
#include "terminal/reachability_probe.hpp"

namespace tsunagu::terminal {
namespace {
namespace fs = std::filesystem;
namespace sig = tsunagu::proto;

constexpr size_t max_card_file_size = 64 * 1024;  // a .card is at most 16 KiB, its QR text 1.5 times that

// Where loaded cards are kept: $TSUNAGU_CARD_DIR, else the XDG state
// directory's tsunagu/cards ($XDG_STATE_HOME, else ~/.local/state).
std::string card_directory() {
  if (const char* dir = std::getenv("TSUNAGU_CARD_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state != '\0')
    return (fs::path(state) / "tsunagu" / "cards").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr ? home : ".") / ".local" / "state" / "tsunagu" / "cards").string();
}

// The terminal's settings file: $TSUNAGU_CONFIG, else
// $XDG_CONFIG_HOME/tsunagu/terminal.toml (else ~/.config/...). Only
// [card] area is read today.
std::string configured_area() {
  std::string file;
  if (const char* given = std::getenv("TSUNAGU_CONFIG"); given != nullptr && *given != '\0') {
    file = given;
  } else {
    const char* config = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    fs::path base = config != nullptr && *config != '\0' ? fs::path(config) : fs::path(home ? home : ".") / ".config";
    file = (base / "tsunagu" / "terminal.toml").string();
  }
  std::error_code ec;
  if (!fs::exists(file, ec)) return "";
  toml::table root = toml::parse_file(file);
  TomlReader reader(root, file);
  reader.reject_unknown({{"card", {"area"}}});
  return reader.text("card.area", "", 255);
}

// At most `limit` bytes of `path`; a longer file is refused.
std::optional<std::string> read_file_up_to(const std::string& path, size_t limit, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::string text;
  text.resize(limit + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limit) {
    error = path + " is larger than " + std::to_string(limit) + " bytes";
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> read_small_file(const std::string& path, std::string& error) {
  return read_file_up_to(path, max_card_file_size, error);
}

// The .card bytes of FILE: a .card as issued, the QR code's text
// (`TSU1:...`), or a PNG image of the QR code (`card issue` writes one;
// a photograph of a printed card will do), read here with libzbar.
std::optional<Bytes> card_bytes_of(const std::string& path, std::string& error) {
  const cards::QrScanLimits image_limits;
  const size_t limit = std::max(max_card_file_size, image_limits.max_file_bytes);
  std::error_code size_error;
  if (auto size = fs::file_size(path, size_error); !size_error && size > limit) {
    error = path + ": file too large (" + std::to_string(size) + " bytes, at most " + std::to_string(limit) + ")";
    return std::nullopt;
  }
  auto text = read_file_up_to(path, limit, error);
  if (!text) return std::nullopt;
  if (cards::looks_like_png(*text)) {
    auto scanned = cards::scan_qr_png(*text, image_limits);
    if (!scanned) {
      error = path + ": " + cards::qr_scan_error_label(scanned.error().code) + " (" + scanned.error().detail + ")";
      return std::nullopt;
    }
    auto decoded = cards::decode_qr_text(*scanned);
    if (!decoded) {
      error = path + ": its QR code is not a card's (" + decoded.error().detail + ")";
      return std::nullopt;
    }
    return std::move(*decoded);
  }
  if (text->size() > max_card_file_size) {
    error = path + " is larger than a card can be";
    return std::nullopt;
  }
  std::string_view trimmed = *text;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' '))
    trimmed.remove_suffix(1);
  if (trimmed.rfind("TSU", 0) == 0) {
    auto decoded = cards::decode_qr_text(trimmed);
    if (!decoded) {
      error = path + ": not a card's QR text (" + decoded.error().detail + ")";
      return std::nullopt;
    }
    return std::move(*decoded);
  }
  auto bytes = as_bytes(*text);
  return Bytes(bytes.begin(), bytes.end());
}

// The card's fields without a signature check (a card in the card directory
// was verified when it was loaded).
std::optional<cards::Card> read_card(ByteView bytes, std::string& error) {
  auto envelope = cards::read_envelope(bytes);
  if (!envelope) {
    error = std::string("not a card: ") + cards::card_error_label(envelope.error().code);
    return std::nullopt;
  }
  auto card = cards::parse_card_payload(envelope->payload);
  if (!card) {
    error = std::string("not a card: ") + cards::card_error_label(card.error().code) + " (" + card.error().detail + ")";
    return std::nullopt;
  }
  return std::move(*card);
}

struct StoredCard {
  Bytes bytes;
  cards::Card card;
};

// The card of `serial` from the card directory, or the only one there when
// `serial` is empty.
std::optional<StoredCard> stored_card(const std::string& serial, std::string& error) {
  std::string directory = card_directory();
  std::string file;
  if (!serial.empty()) {
    file = (fs::path(directory) / (serial + ".card")).string();
  } else {
    std::error_code ec;
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(directory, ec))
      if (entry.path().extension() == ".card") found.push_back(entry.path().string());
    if (found.size() != 1) {
      error = found.empty() ? "no card loaded (tsunagu card load FILE)"
                            : "more than one card loaded in " + directory + ": name one by its serial";
      return std::nullopt;
    }
    file = found[0];
  }
  auto bytes = card_bytes_of(file, error);
  if (!bytes) return std::nullopt;
  auto card = read_card(*bytes, error);
  if (!card) return std::nullopt;
  return StoredCard{std::move(*bytes), std::move(*card)};
}

// Beside the cards: the issuer keys the terminal trusts (KEYID.issuer, the
// key in hex: from `card load --issuer-key`, or the key the node checked the
// card under) and the newest issuer update of each (KEYID.update, as signed).
std::string hex_of(ByteView bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : bytes) {
    out += digits[std::to_integer<unsigned>(b) >> 4];
    out += digits[std::to_integer<unsigned>(b) & 15];
  }
  return out;
}

bool write_card_file(const std::string& name, ByteView bytes) {
  std::string directory = card_directory();
  std::error_code ec;
  fs::create_directories(directory, ec);
  chmod(directory.c_str(), 0700);
  std::string target = (fs::path(directory) / name).string();
  std::string temporary = target + ".new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return false;
  }
  return std::rename(temporary.c_str(), target.c_str()) == 0;
}

void keep_issuer_key(ByteView public_key) {
  std::string hex = hex_of(public_key);
  write_card_file(hex_of(cards::issuer_key_id(public_key)) + ".issuer", as_bytes(hex));
}

// The contents of the card directory's files ending in `extension`.
std::vector<std::string> kept_files(std::string_view extension) {
  std::vector<std::string> contents;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(card_directory(), ec)) {
    if (entry.path().extension() != extension) continue;
    std::string error;
    if (auto text = read_small_file(entry.path().string(), error)) contents.push_back(std::move(*text));
  }
  return contents;
}

std::vector<cards::TrustedIssuer> kept_issuers() {
  std::vector<cards::TrustedIssuer> trusted;
  for (const auto& text : kept_files(".issuer")) {
    auto key = cards::from_hex(text.substr(0, 64));
    if (key && key->size() == 32) trusted.push_back(cards::TrustedIssuer{cards::issuer_key_id(*key), *key});
  }
  return trusted;
}

// The newest update kept that verifies under a kept issuer key; nullopt when
// none does (a card loaded before updates, or an issuer key not kept).
std::optional<cards::CardUpdate> kept_update() {
  auto trusted = kept_issuers();
  std::optional<cards::CardUpdate> newest;
  for (const auto& text : kept_files(".update")) {
    auto update = cards::decode_card_update(as_bytes(text), trusted);
    if (update && (!newest || update->version > newest->version)) newest = std::move(*update);
  }
  return newest;
}

// An update the node sent: kept when it verifies and is newer than the one
// kept; an older or equal one never replaces it.
void keep_update(ByteView bytes) {
  auto update = cards::decode_card_update(bytes, kept_issuers());
  if (!update) {
    std::cerr << "card: the node's issuer update does not verify here ("
              << cards::card_error_label(update.error().code) << "); not kept" << std::endl;
    return;
  }
  auto kept = kept_update();
  if (kept && kept->version >= update->version) return;
  if (!write_card_file(hex_of(update->issuer_key_id) + ".update", bytes)) {
    std::cerr << "card: cannot write the issuer update in " << card_directory() << std::endl;
    return;
  }
  std::cerr << "card: issuer update version " << update->version << " kept (" << update->revoked.size()
            << " revoked serial(s)" << (update->areas.empty() ? "" : ", a new area table") << ")" << std::endl;
}

// Key rollover statements the node sent beside an update: each new key an
// old kept one endorsed (directly or through a chain) is kept, so an update
// signed after a `card rekey` verifies here. A statement that does not verify
// under a kept key (forged, or of another issuer) adds nothing.
void keep_key_rollovers(const std::vector<Bytes>& statements) {
  for (const auto& added : cards::follow_key_rollovers(kept_issuers(), statements)) {
    keep_issuer_key(added.public_key);
    std::cerr << "card: issuer key " << hex_of(added.key_id) << " kept (endorsed by a key kept here)" << std::endl;
  }
}

// The rollovers, then the update, of a node's answer.
void take_update(const proto::Message& message) {
  const auto* update = message.find(sig::attr::card_update);
  if (update == nullptr) return;
  std::vector<Bytes> statements;
  for (const auto* statement : message.find_all(sig::attr::card_key_rollover))
    statements.emplace_back(statement->value.begin(), statement->value.end());
  keep_key_rollovers(statements);
  keep_update(update->value);
}

// The kept update applied to a card: refused when it revokes the card, its
// area table in place of the card's. The update's version (0: none).
std::optional<uint64_t> apply_kept_update(cards::Card& card, std::string& error) {
  auto update = kept_update();
  if (!update) return 0;
  if (update->revokes(card.serial)) {
    error = "card " + card.card_id.text() + " (serial " + std::to_string(card.serial) +
            ") was revoked by its issuer (issuer update version " + std::to_string(update->version) + ")";
    return std::nullopt;
  }
  if (!update->areas.empty()) card.areas = update->areas;
  return update->version;
}

std::optional<std::string> read_card_password(const std::optional<std::string>& file, std::string& error) {
  PasswordSource source;
  source.file = file;
  source.environment_variable = "TSUNAGU_CARD_PASSWORD";
  source.prompt = "Card password: ";
  return read_password(source, error);
}

std::string clock_text(int minutes) {
  char text[16];  // room for any int, so gcc -O0 (the sanitizer build) sees no truncation
  std::snprintf(text, sizeof text, "%02d:%02d", minutes / 60, minutes % 60);
  return text;
}

std::string utc_minute(int64_t unix_s) {
  std::time_t time = static_cast<std::time_t>(unix_s);
  char when[32] = "";
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&time));
  return when;
}

void print_card(const cards::Card& card) {
  std::cout << "serial       " << card.serial << "\ncard ID      " << card.card_id.text() << "\nexpires      "
            << utc_minute(card.expires_at)
            << "\nunits issued " << card.units_issued << "\n";
  for (const auto& area : card.areas) {
    std::cout << "area " << area.code << "\n";
    for (auto [kind, list] : {std::pair{"internet", &area.internet}, std::pair{"premium", &area.premium},
                              std::pair{"agent", &area.agents}}) {
      for (const auto& point : *list) {
        std::cout << "  " << kind << " " << point.name << "  node " << point.node << "  " << point.cost_per_minute
                  << " units/min";
        for (const auto& band : point.tariff)
          std::cout << "  (" << clock_text(band.start_minute) << "-" << clock_text(band.end_minute) << ": "
                    << band.cost_per_minute << ")";
        std::cout << "\n";
        for (const auto& relay : point.relays) std::cout << "      relay " << relay << "\n";
      }
    }
  }
}

// Asks the node for the card's units (card_status: the node verifies the
// card under its issuer keys and checks the password). Prints them; the exit code.
int ask_units(NodeClientOptions options, const Bytes& card, const std::string& password, uint64_t* units_out) {
  return run_query(std::move(options), [&](NodeClient& client, int& exit_code) {
    client.request(
        sig::method::card_status,
        [&](proto::MessageBuilder& b) {
          b.add(sig::attr::card, card);
          b.add_string(sig::attr::card_password, password);
          if (auto kept = kept_update()) b.add_u64(sig::attr::card_update_version, kept->version);
        },
        [&](const proto::Message* response, std::string_view error) {
          if (response != nullptr && response->message_class == proto::MessageClass::error)
            take_update(*response);
          if (response == nullptr || response->message_class == proto::MessageClass::error) {
            const auto* code = response ? response->find(proto::attr::error_code) : nullptr;
            auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
            std::cerr << "tsunagu: card: " << (parsed ? std::string(parsed->reason) : std::string(error)) << std::endl;
            exit_code = response ? exit_refused : exit_network;
            return client.stop();
          }
          // The key the node checked the card under: what the issuer's
          // updates are verified with from now on (trust in the node's TLS
          // certificate, which the terminal already checked the card with).
          if (const auto* key = response->find(sig::attr::card_issuer_key); key != nullptr && key->value.size() == 32)
            keep_issuer_key(key->value);
          take_update(*response);
          const auto* units = response->find(sig::attr::card_units);
          uint64_t left = units ? proto::read_u64(*units).value_or(0) : 0;
          if (units_out != nullptr) *units_out = left;
          std::cout << "units left   " << left << std::endl;
          // Whose password the node now takes: the holder's, or still the printed one.
          const auto* set = response->find(sig::attr::card_password_set);
          auto set_at = set ? proto::read_u64(*set) : std::nullopt;
          bool required = response->find(sig::attr::card_password_required) != nullptr;
          if (set_at)
            std::cout << "password     the holder's, set " << utc_minute(static_cast<int64_t>(*set_at)) << std::endl;
          else
            std::cout << "password     the printed one (the issuer's)"
                      << (required ? "; the node takes the card for calls only after `tsunagu card password`"
                                   : "")
                      << std::endl;
          client.stop();
        });
  });
}

// The area the node puts this terminal in (card_area: node.toml
// [cards.areas] by the link's source address); empty when the node has no
// area for it. exit code through `exit_code`.
std::string ask_area(NodeClientOptions options, int& exit_code) {
  std::string area;
  exit_code = run_query(std::move(options), [&](NodeClient& client, int& code) {
    client.request(
        sig::method::card_area, [](proto::MessageBuilder&) {},
        [&](const proto::Message* response, std::string_view error) {
          if (response == nullptr) {
            std::cerr << "tsunagu: card: " << error << std::endl;
            code = exit_network;
          } else if (const auto* given = response->find(sig::attr::card_area);
                     response->message_class == proto::MessageClass::success && given != nullptr) {
            area = std::string(proto::read_string(*given));
          } else {
            const auto* error_code = response->find(proto::attr::error_code);
            auto parsed = error_code ? proto::read_error_code(*error_code) : std::nullopt;
            std::cerr << "card: the node has no area for this terminal ("
                      << (parsed ? std::string(parsed->reason) : std::string("no reason")) << ")" << std::endl;
          }
          client.stop();
        });
  });
  return area;
}

}  // namespace

struct CardCommands {
  CLI::App* load = nullptr;
  CLI::App* show = nullptr;
  CLI::App* password = nullptr;
  std::optional<std::string> new_password_file;
  std::string file;
  std::vector<std::string> issuer_keys;
  std::string serial;
  std::optional<std::string> password_file;
  NodeArgs node;
};

std::shared_ptr<CardCommands> add_card_commands(CLI::App& app) {
  auto c = std::make_shared<CardCommands>();
  auto* card = app.add_subcommand("card", "Access cards: load one, show it and its units (docs/cards.md)");
  c->load = card->add_subcommand("load", "Verify a card and keep it in the card directory");
  c->load->add_option("FILE", c->file, "The .card file, its QR code as a PNG image, or its QR text (TSU1:...)")
      ->required();
  c->load->add_option("--issuer-key", c->issuer_keys,
                      "Verify offline with this issuer public key (64 hex digits, from `tsunagu-rendezvous card keys`; "
                      "repeatable); without it the node checks the card and its password");
  c->load->add_option("--card-password-file", c->password_file, "Read the card password from FILE (- = stdin)");
  c->node.add_to(c->load);
  c->show = card->add_subcommand("show", "Print a loaded card's areas and access points; from the node, its units and whose password is in force");
  c->show->add_option("SERIAL", c->serial, "Which card (default: the only one loaded)");
  c->show->add_option("--card-password-file", c->password_file, "Read the card password from FILE (- = stdin)");
  c->node.add_to(c->show);
  c->password = card->add_subcommand(
      "password", "Set the card's password: the one printed with the card is refused from then on (on the node)");
  c->password->add_option("SERIAL", c->serial, "Which card (default: the only one loaded)");
  c->password->add_option("--card-password-file", c->password_file,
                          "Read the current card password from FILE (- = stdin)");
  c->password->add_option("--new-password-file", c->new_password_file,
                          "Read the new password from FILE (at least 8 letters and digits)");
  c->node.add_to(c->password);
  card->require_subcommand(1);
  return c;
}

namespace {

int run_load(CardCommands& c) {
  std::string error;
  auto bytes = card_bytes_of(c.file, error);
  if (!bytes) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  auto card = read_card(*bytes, error);
  if (!card) return std::cerr << "tsunagu: " << c.file << ": " << error << std::endl, exit_refused;
  if (!c.issuer_keys.empty()) {
    std::vector<cards::TrustedIssuer> trusted;
    for (const auto& hex : c.issuer_keys) {
      auto key = cards::from_hex(hex);
      if (!key || key->size() != 32) return std::cerr << "tsunagu: --issuer-key: not 64 hex digits" << std::endl, exit_usage;
      trusted.push_back(cards::TrustedIssuer{cards::issuer_key_id(*key), *key});
    }
    auto verified = cards::decode_card(*bytes, trusted, static_cast<int64_t>(std::time(nullptr)));
    if (!verified) {
      std::cerr << "tsunagu: " << c.file << ": NOT VALID: " << cards::card_error_label(verified.error().code) << " ("
                << verified.error().detail << ")" << std::endl;
      return exit_refused;
    }
    for (const auto& issuer : trusted) keep_issuer_key(issuer.public_key);
  } else {
    int code = 0;
    auto options = c.node.prepare(code);
    if (!options) return code;
    auto password = read_card_password(c.password_file, error);
    if (!password) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
    if (int asked = ask_units(*options, *bytes, *password, nullptr); asked != 0) return asked;
  }
  std::string directory = card_directory();
  std::error_code ec;
  fs::create_directories(directory, ec);
  chmod(directory.c_str(), 0700);
  std::string target = (fs::path(directory) / (std::to_string(card->serial) + ".card")).string();
  std::ofstream out(target, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return std::cerr << "tsunagu: cannot write " << target << std::endl, exit_network;
  std::cout << "card " << card->card_id.text() << " (serial " << card->serial << ") verified and kept in " << target
            << std::endl;
  return 0;
}

int run_show(CardCommands& c) {
  std::string error;
  auto stored = stored_card(c.serial, error);
  if (!stored) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  auto version = apply_kept_update(stored->card, error);
  print_card(stored->card);
  if (!version) std::cout << "REVOKED      " << error << "\n";
  else if (*version > 0) std::cout << "issuer update version " << *version << " applied\n";
  if (c.node.node.empty()) {
    std::cout << "units left   (give --node to ask the node)" << std::endl;
    return 0;
  }
  int code = 0;
  auto options = c.node.prepare(code);
  if (!options) return code;
  auto password = read_card_password(c.password_file, error);
  if (!password) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  return ask_units(*options, stored->bytes, *password, nullptr);
}

// The holder's new password: from --new-password-file, else
// TSUNAGU_CARD_NEW_PASSWORD, else typed twice on the tty.
std::optional<std::string> read_new_card_password(const std::optional<std::string>& file, std::string& error) {
  PasswordSource source;
  source.file = file;
  source.environment_variable = "TSUNAGU_CARD_NEW_PASSWORD";
  source.prompt = "New card password: ";
  auto chosen = read_password(source, error);
  const char* given = std::getenv("TSUNAGU_CARD_NEW_PASSWORD");
  if (!chosen || file || (given != nullptr && *given != '\0')) return chosen;
  source.prompt = "Again: ";
  auto again = read_password(source, error);
  if (!again) return std::nullopt;
  if (*again != *chosen) {
    error = "the two passwords differ";
    return std::nullopt;
  }
  return chosen;
}

int run_password(CardCommands& c) {
  std::string error;
  auto stored = stored_card(c.serial, error);
  if (!stored) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  int code = 0;
  auto options = c.node.prepare(code);
  if (!options) return code;
  auto current = read_card_password(c.password_file, error);
  if (!current) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  auto chosen = read_new_card_password(c.new_password_file, error);
  if (!chosen) return std::cerr << "tsunagu: " << error << std::endl, exit_usage;
  if (const char* problem = cards::holder_password_problem(*chosen, sig::max_card_password_size))
    return std::cerr << "tsunagu: the new card password is " << problem << std::endl, exit_usage;
  return run_query(std::move(*options), [&](NodeClient& client, int& exit_code) {
    client.request(
        sig::method::card_password,
        [&](proto::MessageBuilder& b) {
          b.add(sig::attr::card, stored->bytes);
          b.add_string(sig::attr::card_password, *current);
          b.add_string(sig::attr::card_new_password, *chosen);
        },
        [&](const proto::Message* response, std::string_view failure) {
          if (response == nullptr || response->message_class == proto::MessageClass::error) {
            const auto* error_code = response ? response->find(proto::attr::error_code) : nullptr;
            auto parsed = error_code ? proto::read_error_code(*error_code) : std::nullopt;
            std::cerr << "tsunagu: card: " << (parsed ? std::string(parsed->reason) : std::string(failure))
                      << std::endl;
            exit_code = response == nullptr                                   ? exit_network
                        : parsed && parsed->code == sig::error::too_many_attempts ? exit_rate_limited
                        : parsed && parsed->code == sig::error::bad_request       ? exit_usage
                                                                                 : exit_refused;
            return client.stop();
          }
          std::cout << "card " << stored->card.card_id.text()
                    << ": password set; the one printed with the card is no longer accepted" << std::endl;
          client.stop();
        });
  });
}

}  // namespace

std::optional<int> run_card_commands(CardCommands& c) {
  if (c.load->parsed()) return run_load(c);
  if (c.show->parsed()) return run_show(c);
  if (c.password->parsed()) return run_password(c);
  return std::nullopt;
}

struct CardCallArgs {
  CLI::Option* card = nullptr;
  std::string serial;
  std::optional<std::string> password_file;
  std::string area;
  std::string server_name;
  // Filled by prepare_card_call.
  std::optional<StoredCard> stored;
  std::string password;
  std::vector<cards::RouteCandidate> candidates;
  uint64_t update_version = 0;
  cards::LeastCostRouter router;  // recalled from the card directory; kept after each attempt
};

std::shared_ptr<CardCallArgs> add_card_call_options(CLI::App* call) {
  auto args = std::make_shared<CardCallArgs>();
  args->card = call->add_option("--card", args->serial,
                                "Pay from a loaded access card (its serial; empty: the only one loaded), through "
                                "the cheapest access point of your area (a connection agent's route needs no --user)")
                   ->expected(0, 1);
  call->add_option("--card-password-file", args->password_file, "Read the card password from FILE (- = stdin)");
  call->add_option("--area", args->area,
                   "Your area on the card (default: $TSUNAGU_CARD_AREA, else [card] area in terminal.toml, else the "
                   "area the card's node places your address in)");
  return args;
}

bool card_call_requested(const CardCallArgs& args) { return args.card != nullptr && args.card->count() > 0; }

namespace {

// The card's nodes, each once, in card order (every card has one).
std::vector<std::string> card_nodes(const cards::Card& card) {
  std::vector<std::string> nodes;
  for (const auto& area : card.areas)
    for (const auto* list : {&area.internet, &area.premium, &area.agents})
      for (const auto& point : *list)
        if (std::find(nodes.begin(), nodes.end(), point.node) == nodes.end()) nodes.push_back(point.node);
  return nodes;
}

// The area from the first of the card's nodes that names one the card has.
bool area_from_nodes(CardCallArgs& args, NodeClientOptions options) {
  if (options.user_id.empty()) return false;  // a node tells its map only to a logged-in link
  for (const auto& node : card_nodes(args.stored->card)) {
    std::string host, error;
    auto address = resolve_node_address(node, host, error);
    if (!address) continue;
    options.node = *address;
    options.verify_name = args.server_name.empty() ? host : args.server_name;
    int code = 0;
    std::string area = ask_area(options, code);
    if (area.empty()) continue;
    if (args.stored->card.find_area(area) == nullptr) {
      std::cerr << "card: node " << node << " places this terminal in area " << area
                << ", which the card does not have" << std::endl;
      continue;
    }
    std::cerr << "card: node " << node << " places this terminal in area " << area << std::endl;
    args.area = area;
    return true;
  }
  return false;
}

// SERIAL.routes beside the card: what the router learnt in earlier calls.
std::string route_memory_path(const cards::Card& card) {
  return (fs::path(card_directory()) / (std::to_string(card.serial) + ".routes")).string();
}

void recall_routes(CardCallArgs& args) {
  std::string error;
  auto text = read_small_file(route_memory_path(args.stored->card), error);
  if (!text) return;  // none yet
  auto memory = cards::parse_route_memory(*text);
  if (!memory) return;  // damaged: start afresh
  args.router.recall(*memory, std::chrono::steady_clock::now(), static_cast<int64_t>(std::time(nullptr)));
}

void keep_routes(CardCallArgs& args) {
  auto memory = args.router.remember(std::chrono::steady_clock::now(), static_cast<int64_t>(std::time(nullptr)));
  write_card_file(std::to_string(args.stored->card.serial) + ".routes", as_bytes(cards::route_memory_text(memory)));
}

// Every access point of the area that reaches the callee, probed at once: a
// TCP connection to its node and a STUN Binding request to each of its relays
// (turns: and transport=tcp relays: a TCP connection), each at most 2 s. A
// point whose node or any relay does not answer is told to the router as
// unreachable: a call through it would have no working relay.
void measure_reachability(CardCallArgs& args, const std::string& callee) {
  const cards::Area* area = args.stored->card.find_area(args.area);
  if (area == nullptr) return;
  struct Measured {
    const cards::AccessPoint* point;
    size_t first_target;
    std::vector<std::string> relays;  // the relay text of each target after the node's
    std::string unresolved;           // a relay whose name did not resolve
  };
  std::vector<Measured> measured;
  std::vector<ProbeTarget> targets;
  for (const auto* list : {&area->internet, &area->premium, &area->agents})
    for (const auto& point : *list) {
      std::string host, error;
      auto address = point.reaches(callee) ? resolve_node_address(point.node, host, error) : std::nullopt;
      if (!address) continue;
      Measured m{&point, targets.size(), {}, {}};
      targets.push_back(ProbeTarget{ProbeTarget::Kind::tcp_connect, *address});
      for (const auto& text : point.relays) {
        auto relay = cards::parse_relay_uri(text);
        auto relay_address = relay ? resolve_node_address(relay->host_port(), host, error) : std::nullopt;
        if (!relay_address) {
          m.unresolved = text;
          continue;
        }
        targets.push_back(ProbeTarget{relay->tcp ? ProbeTarget::Kind::tcp_connect : ProbeTarget::Kind::stun_binding,
                                      *relay_address});
        m.relays.push_back(text);
      }
      measured.push_back(std::move(m));
    }
  auto results = probe_targets(targets, std::chrono::milliseconds(2000));
  auto now = std::chrono::steady_clock::now();
  for (const auto& m : measured) {
    std::string failed;
    if (!results[m.first_target].reachable) failed = "does not answer";
    for (size_t i = 0; i < m.relays.size() && failed.empty(); ++i)
      if (!results[m.first_target + 1 + i].reachable) failed = "relay " + m.relays[i] + " does not answer";
    if (failed.empty() && !m.unresolved.empty()) failed = "relay " + m.unresolved + " cannot be resolved";
    if (failed.empty()) {
      args.router.report_reachable(m.point->name, now);
    } else {
      args.router.report_unreachable(m.point->name, now);
      std::cerr << "card: access point " << m.point->name << " (" << m.point->node << ") " << failed << std::endl;
    }
  }
}

// The router's choice first (hysteresis: the last good route is kept unless
// another is clearly cheaper and settled), then the rest cheapest first.
bool rank_card_routes(CardCallArgs& args, const std::string& callee) {
  // TSUNAGU_TEST_CARD_CLOCK ("HH:MM", a test hook): rank at that time of day.
  auto minute = cards::routing_minute(static_cast<int64_t>(std::time(nullptr)), env_or("TSUNAGU_TEST_CARD_CLOCK", ""));
  if (!minute) {
    std::cerr << "tsunagu: TSUNAGU_TEST_CARD_CLOCK must be HH:MM (00:00-23:59); the real clock is used" << std::endl;
    minute = cards::minute_of_day(static_cast<int64_t>(std::time(nullptr)));
  }
  auto now = std::chrono::steady_clock::now();
  cards::RouteRequest request{args.area, callee, *minute};
  args.candidates = args.router.rank(args.stored->card, request, now);
  auto choice = args.router.choose(args.stored->card, request, now);
  if (choice) {
    std::erase_if(args.candidates, [&](const cards::RouteCandidate& c) { return c.point == choice->point; });
    args.candidates.insert(args.candidates.begin(), *choice);
  }
  return !args.candidates.empty();
}

}  // namespace

bool prepare_card_call(CardCallArgs& args, NodeArgs& node, const std::string& callee, int& exit_code) {
  auto fail = [&](const std::string& why) {
    std::cerr << "tsunagu: " << why << std::endl;
    exit_code = exit_usage;
    return false;
  };
  std::string error;
  args.stored = stored_card(args.serial, error);
  if (!args.stored) return fail(error);
  auto update_version = apply_kept_update(args.stored->card, error);
  if (!update_version) {
    std::cerr << "tsunagu: " << error << "; the node would refuse it" << std::endl;
    exit_code = exit_refused;
    return false;
  }
  args.update_version = *update_version;
  if (args.area.empty()) args.area = env_or("TSUNAGU_CARD_AREA", "");
  if (args.area.empty()) {
    try {
      args.area = configured_area();
    } catch (const std::exception& e) {
      return fail(e.what());
    }
  }
  if (!args.area.empty()) {
    if (args.stored->card.find_area(args.area) == nullptr) return fail("the card has no area \"" + args.area + "\"");
    if (!rank_card_routes(args, callee)) return fail("no access point of area " + args.area + " reaches " + callee);
    node.node = args.candidates.front().point->node;
  } else {
    // No area of its own: run_card_call asks the card's nodes (card_area).
    node.node = card_nodes(args.stored->card).front();
  }
  auto password = read_card_password(args.password_file, error);
  if (!password) return fail(error);
  args.password = *password;
  args.server_name = node.server_name;
  return true;
}


int run_card_call(CallOptions options, CardCallArgs& args) {
  recall_routes(args);
  measure_reachability(args, options.callee);
  if (!args.area.empty() && !rank_card_routes(args, options.callee)) {
    std::cerr << "tsunagu: no access point of area " << args.area << " reaches " << options.callee
              << " or answers now" << std::endl;
    keep_routes(args);
    return exit_network;
  }
  if (args.area.empty()) {
    if (!area_from_nodes(args, options.node)) {
      std::cerr << "tsunagu: no area: give --area, set TSUNAGU_CARD_AREA or [card] area in terminal.toml (the "
                   "card's nodes did not place this terminal in one of its areas)"
                << std::endl;
      return exit_usage;
    }
    measure_reachability(args, options.callee);
    if (!rank_card_routes(args, options.callee)) {
      std::cerr << "tsunagu: no access point of area " << args.area << " reaches " << options.callee << std::endl;
      return exit_usage;
    }
  }
  options.card.card = args.stored->bytes;
  options.card.password = args.password;
  options.card.update_version = args.update_version;
  options.card.on_update = [](ByteView update) { keep_update(update); };
  options.card.on_key_rollovers = [](const std::vector<Bytes>& statements) { keep_key_rollovers(statements); };
  int result = exit_network;
  bool tried = false;
  const bool logged_in_user = !options.node.user_id.empty();
  for (const auto& candidate : args.candidates) {
    // A connection agent places the call for the holder: no login there (seed
    // 002, claims 6-7). Any other access point calls as the logged-in user.
    bool agent = candidate.kind == cards::RouteKind::agent;
    if (!agent && !logged_in_user) {
      std::cerr << "card: access point " << candidate.point->name
                << " is not a connection agent and needs a login (--user); skipped" << std::endl;
      continue;
    }
    tried = true;
    options.node.authenticate = !agent;
    std::string host;
    std::string error;
    auto address = resolve_node_address(candidate.point->node, host, error);
    if (!address) {
      std::cerr << "tsunagu: card: access point " << candidate.point->name << ": " << error << std::endl;
      continue;
    }
    options.node.node = *address;
    options.node.verify_name = args.server_name.empty() ? host : args.server_name;
    options.card.route = candidate.point->name;
    std::cerr << "card: calling through " << cards::route_kind_name(candidate.kind) << " access point "
              << candidate.point->name << " (" << candidate.point->node << ", " << candidate.cost_per_minute
              << " units/min)" << std::endl;
    result = run_call(options);
    // Only a node that could not be reached moves the call to the next access
    // point: anything later (refused, busy, ended) is the call's own outcome.
    if (result != exit_network) {
      args.router.report_reachable(candidate.point->name, std::chrono::steady_clock::now());
      args.router.settle_on(candidate.point->name);
      keep_routes(args);
      return result;
    }
    args.router.report_unreachable(candidate.point->name, std::chrono::steady_clock::now());
    keep_routes(args);
    std::cerr << "card: access point " << candidate.point->name << " unreachable; trying the next" << std::endl;
  }
  if (!tried) {
    std::cerr << "tsunagu: no user ID: give --user ID or set TSUNAGU_USER (only a connection agent places a card "
                 "call without a login)"
              << std::endl;
    return exit_usage;
  }
  return result;
}

}  // namespace tsunagu::terminal
