// The deployment's card issuer: the Ed25519 key cards are signed with, the
// public keys of keys retired by `card rekey` (cards they signed stay valid
// until they expire), and the secret card passwords are derived with. Files
// in the deployment directory, hex, 0600:
//   card_issuer.key          the current 32-byte seed
//   card_issuer_retired.pub  one retired public key a line (no private half is kept)
//   card_password.secret     32 bytes
//   card_update.cose         the newest signed update for terminals (area
//                            table, revoked serials; `card publish`, `card revoke`)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "cards/card_codec.hpp"

namespace tsunagu::rendezvous {

struct CardIssuer {
  Bytes private_key;  // the current seed
  Bytes public_key;
  Bytes password_secret;
  // The current key first, then retired ones, newest retired first: what a
  // verifier of this deployment's cards trusts.
  std::vector<cards::TrustedIssuer> trusted;
};

// Reads the issuer files of `directory`. `create`: makes the key and the
// secret (random) when absent, as the first `card issue` does; otherwise their
// absence is an error saying no card was issued here.
Expected<CardIssuer, std::string> load_card_issuer(const std::string& directory, bool create);

// Retires the current key (its public half is kept in card_issuer_retired.pub)
// and makes a new one, which the old key endorses in card_key_rollovers
// (written first: a crash after it leaves a statement for a key never used,
// which endorses nothing that was signed); returns the issuer as it is now. The retired list is
// written before the key is replaced, so a crash in between leaves the old key
// current and retired at once, which is harmless.
Expected<CardIssuer, std::string> rekey_card_issuer(const std::string& directory);

// DIR/card_key_rollovers: one statement a line (hex), oldest first, each the
// retired key's endorsement of the key that replaced it, appended by
// rekey_card_issuer(). The newest max_served_key_rollovers are returned (a
// terminal further behind is given the key by hand: `card load --issuer-key`).
inline constexpr size_t max_served_key_rollovers = 8;
std::vector<Bytes> read_card_key_rollovers(const std::string& directory);

// DIR/card_update.cose.
std::string card_update_path(const std::string& directory);
// The file's bytes as the node serves them; empty when there is none (or it is
// above cards::max_card_update_size: the node then serves none and logs nothing,
// `card publish` never writes one).
Bytes read_card_update_file(const std::string& directory);
// Signs and writes the next update: the version one above the file's (1 when
// there is none), `areas` (nullopt: the file's update's areas, none without
// one), `revoked` (sorted here). The file's update must verify under the
// issuer's keys, or nothing is written. Returns what was written, or why not.
Expected<cards::CardUpdate, std::string> publish_card_update(const std::string& directory, const CardIssuer& issuer,
                                                             std::optional<std::vector<cards::Area>> areas,
                                                             std::vector<uint64_t> revoked, int64_t now);

}  // namespace tsunagu::rendezvous
