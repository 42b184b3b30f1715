// An access card (seed 002): who issued it, which card it is, until when it is
// valid, and the area table the terminal routes by. Plain values; the signed
// wire form is card_codec.hpp's, the field-by-field CBOR keys are in
// docs/cards.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.hpp"

namespace tsunagu::cards {

inline constexpr size_t issuer_key_id_size = 8;
inline constexpr int minutes_per_day = 24 * 60;

// The seed's manufacturing code ([0019], [0052]): issue date, group, sequence
// within the group. Printed as "20261205-0007-000042".
struct CardId {
  uint32_t issue_date = 0;  // YYYYMMDD
  uint32_t group = 0;       // 0..9999
  uint32_t sequence = 0;    // 0..999999

  std::string text() const;
  static std::optional<CardId> parse(std::string_view text);
  bool operator==(const CardId&) const = default;
};

// Within [start_minute, end_minute) of the day (UTC minutes, 0..1440) the
// access point costs `cost_per_minute` instead of its base cost. A band over
// midnight is written as two bands.
struct TariffBand {
  uint16_t start_minute = 0;
  uint16_t end_minute = 0;
  uint32_t cost_per_minute = 0;
  bool operator==(const TariffBand&) const = default;
};

// One way into the network from an area: an internet access point (a
// rendezvous node and its STUN/TURN relays), a premium one (relays of a higher
// quality class, the seed's dedicated line), or a connection agent (a node
// that places calls for the holder, claims 6-7). All three have the same shape.
struct AccessPoint {
  std::string name;                       // unique within the card; reachability is reported by it
  std::string node;                       // "host:port" of the rendezvous node (or the agent's node)
  std::vector<std::string> relays;        // "stun:host:port" / "turn:host:port" URIs
  uint32_t cost_per_minute = 0;           // units per minute outside every tariff band
  std::vector<TariffBand> tariff;         // time-of-day exceptions, not overlapping
  std::vector<std::string> destinations;  // user-ID prefixes it reaches; empty: every destination

  // Units per minute at `minute_of_day` (0..1439).
  uint32_t cost_at(int minute_of_day) const;
  bool reaches(std::string_view destination) const;
  bool operator==(const AccessPoint&) const = default;
};

struct Area {
  std::string code;  // the seed's area code ([0009]): "tokyo", "03", ...
  std::vector<AccessPoint> internet;
  std::vector<AccessPoint> premium;
  std::vector<AccessPoint> agents;
  bool operator==(const Area&) const = default;
};

struct Card {
  Bytes issuer_key_id;     // issuer_key_id_size bytes; also the COSE kid
  uint64_t serial = 0;     // unique per issuer; the ledger's key
  CardId card_id;
  int64_t expires_at = 0;  // Unix seconds; the card is valid while now < expires_at
  uint64_t units_issued = 0;  // display only: the node's ledger is authoritative ([0043])
  std::vector<Area> areas;

  const Area* find_area(std::string_view code) const;
  bool operator==(const Card&) const = default;
};

// What the issuer signs after its cards are out (docs/cards.md, "Area table
// updates and revocations"): a newer area table, which replaces the one on
// each of its cards, and the serials it has revoked. Versions count up from 1:
// a terminal keeps the newest it has seen and never goes back to an older one.
struct CardUpdate {
  Bytes issuer_key_id;            // issuer_key_id_size bytes; also the COSE kid
  uint64_t version = 0;           // 1, 2, ...
  int64_t issued_at = 0;          // Unix seconds, for people
  std::vector<Area> areas;        // empty: each card's own table stands
  std::vector<uint64_t> revoked;  // serials, ascending, each once

  bool revokes(uint64_t serial) const;
  bool operator==(const CardUpdate&) const = default;
};

// After `card rekey` (docs/cards.md, "Key rollover"): the OLD issuer key
// endorses the NEW one, so a terminal that trusts only the old key can come
// to trust the new one through a statement the old key signed, and through
// nothing else.
struct KeyRollover {
  Bytes old_key_id;      // issuer_key_id_size bytes; also the COSE kid (the signer)
  Bytes new_public_key;  // 32 bytes, Ed25519
  int64_t issued_at = 0;  // Unix seconds, for people

  bool operator==(const KeyRollover&) const = default;
};

// Hex digits (either case) to bytes, as the issuer's key files and
// `card keys` write them; nullopt for an odd length or a non-digit.
std::optional<Bytes> from_hex(std::string_view text);

}  // namespace tsunagu::cards
