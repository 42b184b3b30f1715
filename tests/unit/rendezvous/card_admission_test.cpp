#include "rendezvous/card_admission.hpp"

#include <doctest/doctest.h>

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {

cards::Card card() {
  cards::Card c;
  c.issuer_key_id = Bytes(8, std::byte{1});
  c.serial = 12;
  c.card_id = cards::CardId{20261205, 7, 12};
  c.expires_at = 2'000'000'000;
  c.units_issued = 100;
  return c;
}

CardAccount entry() {
  CardAccount a;
  a.serial = 12;
  a.card_id = "20261205-0007-000012";
  a.units_issued = 100;
  a.units_left = 40;
  return a;
}

using Decoded = Expected<cards::Card, cards::CardError>;

CardRefusal refusal(const Decoded& decoded, const std::optional<CardAccount>& account, bool password_ok = true,
                    size_t calls = 0) {
  return admit_card(decoded, account, password_ok, calls, 1).refusal;
}

}  // namespace

TEST_CASE("card admission: a valid card in the ledger with units, the right password and no call is admitted") {
  CardDecision decision = admit_card(Decoded(card()), entry(), true, 0, 1);
  CHECK(decision.admitted());
  CHECK(decision.reason() == "admitted");
}

TEST_CASE("card admission: each misuse is refused with its own reason") {
  Decoded forged = Unexpected(cards::CardError{cards::CardErrc::bad_signature, "x"});
  CardDecision invalid = admit_card(forged, entry(), true, 0, 1);
  CHECK(invalid.refusal == CardRefusal::invalid);
  CHECK(invalid.reason() == "invalid: bad signature");
  CHECK(refusal(Decoded(Unexpected(cards::CardError{cards::CardErrc::expired, "x"})), entry()) ==
        CardRefusal::invalid);
  CHECK(refusal(Decoded(card()), std::nullopt) == CardRefusal::unknown_card);
  CardAccount revoked = entry();
  revoked.revoked = true;
  CHECK(refusal(Decoded(card()), revoked) == CardRefusal::revoked);
  CardAccount other_id = entry();
  other_id.card_id = "20261205-0007-000013";
  CHECK(refusal(Decoded(card()), other_id) == CardRefusal::mismatch);
  CardAccount fewer_issued = entry();
  fewer_issued.units_issued = 50;  // a card claiming more than the ledger issued
  CHECK(refusal(Decoded(card()), fewer_issued) == CardRefusal::mismatch);
  CHECK(refusal(Decoded(card()), entry(), false) == CardRefusal::bad_password);
  CardAccount empty = entry();
  empty.units_left = 0;
  CHECK(refusal(Decoded(card()), empty) == CardRefusal::no_units);
  CHECK(refusal(Decoded(card()), entry(), true, 1) == CardRefusal::in_use);
  CHECK(admit_card(Decoded(card()), entry(), true, 1, 2).admitted());
}

TEST_CASE("card admission: holder_password_required refuses a card whose printed password is in force, after the password") {
  CardAccount printed = entry();
  CardDecision forced = admit_card(Decoded(card()), printed, true, 0, 1, true);
  CHECK(forced.refusal == CardRefusal::password_change_required);
  CHECK(forced.reason().find("tsunagu card password") != std::string::npos);
  // A wrong password is refused as wrong first; revocation before both.
  CHECK(admit_card(Decoded(card()), printed, false, 0, 1, true).refusal == CardRefusal::bad_password);
  printed.revoked = true;
  CHECK(admit_card(Decoded(card()), printed, true, 0, 1, true).refusal == CardRefusal::revoked);
  CardAccount chosen = entry();
  chosen.password_set_at = 1'796'000'000;
  CHECK(admit_card(Decoded(card()), chosen, true, 0, 1, true).admitted());
  CHECK(admit_card(Decoded(card()), entry(), true, 0, 1, false).admitted());  // not asked: the printed one serves
  // After it: units and calls in progress.
  chosen.units_left = 0;
  CHECK(admit_card(Decoded(card()), chosen, true, 0, 1, true).refusal == CardRefusal::no_units);
}

TEST_CASE("card calls: a card's calls are counted with their sources until they end") {
  CardCallTable table;
  CHECK(table.begin(12, 1, "198.51.100.7:4000"));
  CHECK_FALSE(table.begin(12, 1, "198.51.100.7:4000"));
  CHECK(table.begin(12, 2, "203.0.113.9:5000"));
  CHECK(table.begin(13, 3, "192.0.2.1:6000"));
  CHECK(table.calls(12) == 2);
  CHECK(table.sources(12) == "198.51.100.7:4000, 203.0.113.9:5000");
  CHECK(table.end(1));
  CHECK_FALSE(table.end(1));
  CHECK(table.calls(12) == 1);
  CHECK(table.end(2));
  CHECK(table.calls(12) == 0);
  CHECK(table.calls(13) == 1);
}
