// The signed card: a CBOR map with integer keys (docs/cards.md lists them)
// wrapped in COSE_Sign1 (RFC 9052, tag 18) with Ed25519:
//   18([ bstr .cbor {1: -8}, {4: kid}, bstr .cbor card, signature ])
// The signature covers Sig_structure ["Signature1", protected, h'', payload].
// This file is the only user of <cbor.h>.
//
// decode_card() checks, in this order: size limit, CBOR well-formedness with
// depth and count limits, the COSE shape, the algorithm, the kid among the
// trusted issuers, the signature, the fields, the kid against the card's
// issuer, and the expiry. Every failure is a CardErrc value with a short
// static detail; nothing throws.
#pragma once

#include <cstdint>
#include <span>

#include "base/expected.hpp"
#include "cards/card.hpp"

namespace tsunagu::cards {

inline constexpr size_t max_card_size = 16 * 1024;
// Field limits an encoder checks and a decoder enforces (docs/cards.md).
inline constexpr size_t max_text_size = 255;
inline constexpr size_t max_areas = 64;
inline constexpr size_t max_access_points_per_list = 16;
inline constexpr size_t max_relays = 8;
inline constexpr size_t max_tariff_bands = 24;
inline constexpr size_t max_destinations = 32;
inline constexpr uint32_t max_cost_per_minute = 1'000'000;

enum class CardErrc {
  too_large,        // input above max_card_size
  truncated,        // the CBOR ends before its last item does
  malformed,        // not well-formed CBOR, or a construct cards never use (floats, indefinite lengths, tags inside)
  limit_exceeded,   // nesting, a container's entry count, or the total item count
  trailing_bytes,   // bytes after the COSE_Sign1 item
  not_cose_sign1,   // well-formed CBOR that is not a tagged four-element COSE_Sign1
  wrong_algorithm,  // the protected header does not say EdDSA (-8)
  unknown_key,      // no trusted issuer has the kid
  bad_signature,    // the signature does not verify
  malformed_field,  // the payload's map misses a field, has a wrong type, an unknown key or a value out of range
  key_mismatch,     // the card's issuer key ID is not the kid it was signed under
  expired,          // now >= expires_at
};

struct CardError {
  CardErrc code;
  const char* detail;  // static text naming the field or limit, for logs and people
};

// "bad signature", "expired", ...: stable labels for logs and counters.
const char* card_error_label(CardErrc code);

struct TrustedIssuer {
  Bytes key_id;      // issuer_key_id(public_key)
  Bytes public_key;  // Ed25519, 32 bytes
};

// The first issuer_key_id_size bytes of SHA-256 over the public key.
Bytes issuer_key_id(ByteView public_key);

// Checks every field against the limits decode enforces, so that what is
// signed always decodes. malformed_field with the offending field's name.
Expected<void, CardError> validate_card(const Card& card);
// The area table's part of validate_card() (areas.toml is checked with it).
Expected<void, CardError> validate_areas(const std::vector<Area>& areas);

// The CBOR map alone (the COSE payload); the card must validate.
Expected<Bytes, CardError> encode_card_payload(const Card& card);
// The .card bytes: COSE_Sign1 over encode_card_payload(). `private_key` is an
// Ed25519 seed whose issuer_key_id() must equal card.issuer_key_id
// (key_mismatch otherwise).
Expected<Bytes, CardError> sign_card(const Card& card, ByteView private_key);

// The parts of a COSE_Sign1 (copies: a card is a few KiB at most).
struct CardEnvelope {
  Bytes protected_header;  // the serialized header map, as signed
  Bytes key_id;
  Bytes payload;
  Bytes signature;
};
// The envelope's shape and algorithm only: no signature check.
Expected<CardEnvelope, CardError> read_envelope(ByteView bytes);
// The payload's fields only: no signature or expiry check. For the fuzz
// target, and for showing a card whose issuer is not trusted here.
Expected<Card, CardError> parse_card_payload(ByteView payload);

// Everything: see the order at the top of this file.
Expected<Card, CardError> decode_card(ByteView bytes, std::span<const TrustedIssuer> trusted, int64_t now);

// The issuer's signed update (CardUpdate, card.hpp) in the same COSE_Sign1
// envelope under the same keys. Small enough to ride in one signalling
// message beside the card (CARD-UPDATE): at most max_card_update_size, so a
// revocation list of up to max_revoked_serials beside an area table of a
// QR card's size. Its payload map (docs/cards.md):
//   {1: kid, 2: version, 3: issued at, 4?: [area, ...], 5?: revoked serials}
// where the serials are one bstr of 8-byte big-endian numbers, ascending.
inline constexpr size_t max_card_update_size = 12 * 1024;
inline constexpr size_t max_revoked_serials = 1024;
Expected<void, CardError> validate_card_update(const CardUpdate& update);
Expected<Bytes, CardError> sign_card_update(const CardUpdate& update, ByteView private_key);
// The payload's fields only (the fuzz target's entry); no signature check.
Expected<CardUpdate, CardError> parse_card_update_payload(ByteView payload);
// Size, envelope, kid among the trusted, signature, fields, kid against the
// update's issuer; an update does not expire (a newer one replaces it).
Expected<CardUpdate, CardError> decode_card_update(ByteView bytes, std::span<const TrustedIssuer> trusted);

// The key rollover statement (KeyRollover, card.hpp), COSE_Sign1 under the
// old key: {1: old key ID (= kid), 2: new public key, 3: issued at}. At most
// max_key_rollover_size; the new key differs from the old.
inline constexpr size_t max_key_rollover_size = 512;
Expected<Bytes, CardError> sign_key_rollover(const KeyRollover& rollover, ByteView old_private_key);
// The payload's fields only (the fuzz target's entry); no signature check.
Expected<KeyRollover, CardError> parse_key_rollover_payload(ByteView payload);
// Size, envelope, kid among the trusted, signature, fields, kid against the
// statement's old key ID.
Expected<KeyRollover, CardError> decode_key_rollover(ByteView bytes, std::span<const TrustedIssuer> trusted);
// The keys `statements` (in any order) lead to from `trusted`: each statement
// that verifies under a key trusted or already followed adds its new key, until
// nothing more is added. Only the added keys are returned (none already trusted).
std::vector<TrustedIssuer> follow_key_rollovers(std::span<const TrustedIssuer> trusted,
                                                std::span<const Bytes> statements);

}  // namespace tsunagu::cards
