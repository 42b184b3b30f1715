#include "rendezvous/card_issuer.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "base/files.hpp"
#include "security/ed25519.hpp"
#include "security/random.hpp"

namespace tsunagu::rendezvous {

namespace {

constexpr const char* key_file = "card_issuer.key";
constexpr const char* retired_file = "card_issuer_retired.pub";
constexpr const char* password_secret_file = "card_password.secret";
constexpr const char* rollovers_file = "card_key_rollovers";
constexpr size_t max_retired_keys = 256;

std::string path_in(const std::string& directory, const char* name) {
  return (std::filesystem::path(directory) / name).string();
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  return text;
}

// A 32-byte secret kept in `directory/name`; made (random) when `create` and absent.
Expected<Bytes, std::string> secret_file(const std::string& directory, const char* name, bool create) {
  std::string path = path_in(directory, name);
  if (!std::filesystem::exists(path)) {
    if (!create) return Unexpected(path + ": absent (no card has been issued in this deployment)");
    Bytes secret = security::random_bytes(32);
    auto written = write_file_atomically(path, to_hex(secret) + "\n", 0600);
    if (!written) return Unexpected(written.error());
    return secret;
  }
  auto text = read_text_file(path, 256);
  if (!text) return Unexpected(text.error());
  auto secret = cards::from_hex(trimmed(*text));
  if (!secret || secret->size() != 32) return Unexpected(path + ": not 64 hex digits");
  return std::move(*secret);
}

Expected<std::vector<Bytes>, std::string> retired_keys(const std::string& directory) {
  std::vector<Bytes> keys;
  std::string path = path_in(directory, retired_file);
  if (!std::filesystem::exists(path)) return keys;
  auto text = read_text_file(path, max_retired_keys * 70);
  if (!text) return Unexpected(text.error());
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (trimmed(line).empty()) continue;
    auto key = cards::from_hex(trimmed(line));
    if (!key || key->size() != 32) return Unexpected(path + ": a line is not 64 hex digits");
    keys.push_back(std::move(*key));
  }
  return keys;
}

}  // namespace

Expected<CardIssuer, std::string> load_card_issuer(const std::string& directory, bool create) {
  auto seed = secret_file(directory, key_file, create);
  if (!seed) return Unexpected(seed.error());
  auto password_secret = secret_file(directory, password_secret_file, create);
  if (!password_secret) return Unexpected(password_secret.error());
  auto retired = retired_keys(directory);
  if (!retired) return Unexpected(retired.error());
  CardIssuer issuer;
  issuer.private_key = std::move(*seed);
  issuer.public_key = security::ed25519_public_key(issuer.private_key);
  issuer.password_secret = std::move(*password_secret);
  issuer.trusted.push_back({cards::issuer_key_id(issuer.public_key), issuer.public_key});
  for (auto it = retired->rbegin(); it != retired->rend(); ++it)
    if (*it != issuer.public_key) issuer.trusted.push_back({cards::issuer_key_id(*it), *it});
  return issuer;
}

Expected<CardIssuer, std::string> rekey_card_issuer(const std::string& directory) {
  auto current = load_card_issuer(directory, false);
  if (!current) return current;
  auto retired = retired_keys(directory);
  if (!retired) return Unexpected(retired.error());
  if (retired->size() >= max_retired_keys) return Unexpected(std::string("256 keys retired already"));
  auto fresh = security::generate_ed25519_key();
  cards::KeyRollover rollover{cards::issuer_key_id(current->public_key), fresh.public_key,
                              static_cast<int64_t>(std::time(nullptr))};
  auto statement = cards::sign_key_rollover(rollover, current->private_key);
  if (!statement) return Unexpected(std::string("the key rollover cannot be signed: ") + statement.error().detail);
  std::string statements;
  if (auto kept = read_text_file(path_in(directory, rollovers_file), max_retired_keys * 2 * cards::max_key_rollover_size))
    statements = *kept;
  statements += to_hex(*statement) + "\n";
  if (auto written = write_file_atomically(path_in(directory, rollovers_file), statements, 0644); !written)
    return Unexpected(written.error());
  std::string text;
  for (const Bytes& key : *retired) text += to_hex(key) + "\n";
  text += to_hex(current->public_key) + "\n";
  if (auto written = write_file_atomically(path_in(directory, retired_file), text, 0600); !written)
    return Unexpected(written.error());
  auto written = write_file_atomically(path_in(directory, key_file), to_hex(fresh.private_key) + "\n", 0600);
  security::wipe(fresh.private_key);
  if (!written) return Unexpected(written.error());
  return load_card_issuer(directory, false);
}

std::vector<Bytes> read_card_key_rollovers(const std::string& directory) {
  std::vector<Bytes> statements;
  auto text = read_text_file(path_in(directory, rollovers_file), max_retired_keys * 2 * cards::max_key_rollover_size);
  if (!text) return statements;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line))
    if (auto statement = cards::from_hex(trimmed(line)); statement && !statement->empty()) statements.push_back(*statement);
  if (statements.size() > max_served_key_rollovers)
    statements.erase(statements.begin(), statements.end() - max_served_key_rollovers);
  return statements;
}

std::string card_update_path(const std::string& directory) {
  return (std::filesystem::path(directory) / "card_update.cose").string();
}

Bytes read_card_update_file(const std::string& directory) {
  auto text = read_text_file(card_update_path(directory), cards::max_card_update_size);
  if (!text) return {};
  return to_bytes(*text);
}

Expected<cards::CardUpdate, std::string> publish_card_update(const std::string& directory, const CardIssuer& issuer,
                                                             std::optional<std::vector<cards::Area>> areas,
                                                             std::vector<uint64_t> revoked, int64_t now) {
  cards::CardUpdate update;
  update.issuer_key_id = cards::issuer_key_id(issuer.public_key);
  update.version = 1;
  std::string path = card_update_path(directory);
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto text = read_text_file(path, cards::max_card_update_size);
    if (!text) return Unexpected(text.error());
    auto previous = cards::decode_card_update(to_bytes(*text), issuer.trusted);
    if (!previous)
      return Unexpected(path + " does not verify under this deployment's issuer keys (" +
                        cards::card_error_label(previous.error().code) + "): move it away to start again at version 1");
    update.version = previous->version + 1;
    if (!areas) areas = previous->areas;
  }
  update.areas = areas.value_or(std::vector<cards::Area>{});
  std::sort(revoked.begin(), revoked.end());
  revoked.erase(std::unique(revoked.begin(), revoked.end()), revoked.end());
  update.revoked = std::move(revoked);
  update.issued_at = now;
  auto signed_update = cards::sign_card_update(update, issuer.private_key);
  if (!signed_update)
    return Unexpected(std::string("the update cannot be signed: ") + signed_update.error().detail);
  if (auto written = write_file_atomically(path, std::string(as_chars(*signed_update)), 0644); !written)
    return Unexpected(written.error());
  return update;
}

}  // namespace tsunagu::rendezvous
