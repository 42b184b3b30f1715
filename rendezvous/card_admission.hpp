// The node's decision on a card presented for a call (issue 15, "forgery and
// misuse"), and the table of calls each card is in. Pure: the caller decodes
// the card (cards::decode_card with CardIssuer::trusted), reads the ledger,
// checks the password off the loop (scrypt), and passes the results in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "cards/card_codec.hpp"
#include "rendezvous/card_ledger.hpp"

namespace tsunagu::rendezvous {

enum class CardRefusal : uint8_t {
  none,
  invalid,        // the card does not decode or verify; CardDecision::card_error says why
  unknown_card,   // signed by this node's issuer but not in its ledger
  revoked,
  mismatch,       // the card's ID or units issued differ from the ledger's entry for its serial
  bad_password,
  no_units,
  in_use,         // already in as many calls as a card may be
  password_change_required,  // [cards] holder_password_required: the printed password is still in force
};
const char* card_refusal_name(CardRefusal refusal);

struct CardDecision {
  CardRefusal refusal = CardRefusal::none;
  std::optional<cards::CardErrc> card_error;  // with CardRefusal::invalid
  bool admitted() const { return refusal == CardRefusal::none; }
  // "invalid: bad signature", "revoked", ...: for the log and the caller's notice.
  std::string reason() const;
};

// In this order: the card itself, the ledger entry, revocation, the entry
// matching the card, the password, whether the holder has replaced the
// printed password (only when `holder_password_required`: the issuer's
// [cards] setting, asked for a call once the password was verified), units
// left, calls in progress.
CardDecision admit_card(const Expected<cards::Card, cards::CardError>& decoded,
                        const std::optional<CardAccount>& account, bool password_ok, size_t calls_in_progress,
                        size_t max_calls_per_card, bool holder_password_required = false);

// Which calls each card is in, and from where: a card's copies used at once
// from two places show here. IDs are the node's call IDs.
class CardCallTable {
 public:
  // false (nothing recorded) when the call is already recorded.
  bool begin(uint64_t serial, uint64_t call_id, std::string source);
  // false when the call was not recorded.
  bool end(uint64_t call_id);
  size_t calls(uint64_t serial) const;
  // The sources of a card's calls, in call order; for the log when one is refused.
  std::string sources(uint64_t serial) const;

 private:
  struct Use {
    uint64_t serial;
    std::string source;
  };
  std::map<uint64_t, Use> by_call_;
  std::map<uint64_t, size_t> count_by_serial_;
};

}  // namespace tsunagu::rendezvous
