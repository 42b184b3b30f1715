#include "rendezvous/card_admission.hpp"

namespace tsunagu::rendezvous {

const char* card_refusal_name(CardRefusal refusal) {
  switch (refusal) {
    case CardRefusal::none: return "admitted";
    case CardRefusal::invalid: return "invalid";
    case CardRefusal::unknown_card: return "unknown card";
    case CardRefusal::revoked: return "revoked";
    case CardRefusal::mismatch: return "does not match the ledger";
    case CardRefusal::bad_password: return "wrong card password";
    case CardRefusal::no_units: return "no units left";
    case CardRefusal::in_use: return "already in a call";
    case CardRefusal::password_change_required:
      return "the printed card password must first be replaced by the holder's own (tsunagu card password)";
  }
  return "unknown";
}

std::string CardDecision::reason() const {
  std::string text = card_refusal_name(refusal);
  if (card_error) text += std::string(": ") + cards::card_error_label(*card_error);
  return text;
}

CardDecision admit_card(const Expected<cards::Card, cards::CardError>& decoded,
                        const std::optional<CardAccount>& account, bool password_ok, size_t calls_in_progress,
                        size_t max_calls_per_card, bool holder_password_required) {
  if (!decoded) return CardDecision{CardRefusal::invalid, decoded.error().code};
  if (!account) return CardDecision{CardRefusal::unknown_card, std::nullopt};
  if (account->revoked) return CardDecision{CardRefusal::revoked, std::nullopt};
  if (account->serial != decoded->serial || account->card_id != decoded->card_id.text() ||
      account->units_issued != decoded->units_issued)
    return CardDecision{CardRefusal::mismatch, std::nullopt};
  if (!password_ok) return CardDecision{CardRefusal::bad_password, std::nullopt};
  if (holder_password_required && account->password_set_at == 0)
    return CardDecision{CardRefusal::password_change_required, std::nullopt};
  if (account->units_left == 0) return CardDecision{CardRefusal::no_units, std::nullopt};
  if (calls_in_progress >= max_calls_per_card) return CardDecision{CardRefusal::in_use, std::nullopt};
  return CardDecision{};
}

bool CardCallTable::begin(uint64_t serial, uint64_t call_id, std::string source) {
  if (!by_call_.emplace(call_id, Use{serial, std::move(source)}).second) return false;
  ++count_by_serial_[serial];
  return true;
}

bool CardCallTable::end(uint64_t call_id) {
  auto found = by_call_.find(call_id);
  if (found == by_call_.end()) return false;
  auto count = count_by_serial_.find(found->second.serial);
  if (--count->second == 0) count_by_serial_.erase(count);
  by_call_.erase(found);
  return true;
}

size_t CardCallTable::calls(uint64_t serial) const {
  auto found = count_by_serial_.find(serial);
  return found == count_by_serial_.end() ? 0 : found->second;
}

std::string CardCallTable::sources(uint64_t serial) const {
  std::string out;
  for (const auto& [call_id, use] : by_call_) {
    if (use.serial != serial) continue;
    if (!out.empty()) out += ", ";
    out += use.source;
  }
  return out;
}

}  // namespace tsunagu::rendezvous
