#include "cards/card_codec.hpp"

#include <cbor.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "security/digest.hpp"
#include "security/ed25519.hpp"

namespace tsunagu::cards {

namespace {

constexpr uint64_t cose_header_algorithm = 1;
constexpr uint64_t cose_header_key_id = 4;
constexpr int64_t cose_algorithm_eddsa = -8;
constexpr size_t max_key_id_size = 32;

// Well-formedness limits, checked before libcbor builds a tree: a card nests
// seven deep (card, areas, area, list, access point, tariff, band), and no
// container of ours holds more than max_areas entries.
constexpr size_t max_depth = 8;
constexpr size_t max_container_entries = 64;
constexpr size_t max_total_items = 4096;

Unexpected<CardError> fail(CardErrc code, const char* detail) { return Unexpected(CardError{code, detail}); }
Unexpected<CardError> field_error(const char* detail) { return fail(CardErrc::malformed_field, detail); }

// ---------------------------------------------------------------- limits scan

// Walks one top-level item with libcbor's streaming decoder, which allocates
// nothing, and refuses what a card never holds before cbor_load() allocates.
struct Scan {
  std::vector<uint64_t> open;  // entries still due in each open container
  size_t items = 0;
  bool started = false;
  std::optional<CardError> error;

  void refuse(CardErrc code, const char* detail) {
    if (!error) error = CardError{code, detail};
  }
  // A complete leaf, or the header of a container with `entries` to follow.
  void item(uint64_t entries) {
    started = true;
    if (++items > max_total_items) return refuse(CardErrc::limit_exceeded, "more than 4096 CBOR items");
    if (!open.empty()) --open.back();
    if (entries > 0) {
      if (open.size() >= max_depth) return refuse(CardErrc::limit_exceeded, "CBOR nested too deep");
      open.push_back(entries);
    }
    while (!open.empty() && open.back() == 0) open.pop_back();
  }
  bool done() const { return started && open.empty() && !error; }
};

Scan& scan_of(void* context) { return *static_cast<Scan*>(context); }
void leaf(void* context) { scan_of(context).item(0); }
void unused(void* context) { scan_of(context).refuse(CardErrc::malformed, "a CBOR construct cards do not use"); }

cbor_callbacks scan_callbacks() {
  cbor_callbacks c = cbor_empty_callbacks;
  c.uint8 = [](void* x, uint8_t) { leaf(x); };
  c.uint16 = [](void* x, uint16_t) { leaf(x); };
  c.uint32 = [](void* x, uint32_t) { leaf(x); };
  c.uint64 = [](void* x, uint64_t) { leaf(x); };
  c.negint8 = [](void* x, uint8_t) { leaf(x); };
  c.negint16 = [](void* x, uint16_t) { leaf(x); };
  c.negint32 = [](void* x, uint32_t) { leaf(x); };
  c.negint64 = [](void* x, uint64_t) { leaf(x); };
  c.byte_string = [](void* x, cbor_data, size_t) { leaf(x); };
  c.string = [](void* x, cbor_data, size_t) { leaf(x); };
  c.array_start = [](void* x, size_t n) {
    if (n > max_container_entries) return scan_of(x).refuse(CardErrc::limit_exceeded, "a CBOR array above 64 entries");
    scan_of(x).item(n);
  };
  c.map_start = [](void* x, size_t n) {
    if (n > max_container_entries) return scan_of(x).refuse(CardErrc::limit_exceeded, "a CBOR map above 64 entries");
    scan_of(x).item(2 * uint64_t{n});
  };
  c.tag = [](void* x, uint64_t) { scan_of(x).refuse(CardErrc::malformed, "a CBOR tag inside the card"); };
  c.byte_string_start = unused;
  c.string_start = unused;
  c.indef_array_start = unused;
  c.indef_map_start = unused;
  c.indef_break = unused;
  c.float2 = [](void* x, float) { unused(x); };
  c.float4 = [](void* x, float) { unused(x); };
  c.float8 = [](void* x, double) { unused(x); };
  c.undefined = unused;
  c.null = unused;
  c.boolean = [](void* x, bool) { unused(x); };
  return c;
}

struct Scanned {
  size_t size = 0;             // of the whole item, tag included
  size_t tag_header_size = 0;  // 0 when untagged
};

// COSE_Sign1's tag (18) in its one-byte form. Taken off before libcbor sees
// the input: libcbor 0.8 (Debian 12) treats the one-byte tags 6..20 as
// unassigned and refuses them, in the streaming decoder and cbor_load() alike.
constexpr std::byte cose_sign1_tag_byte{0xD2};

// The extent of the first complete item of `bytes`, within the limits.
Expected<Scanned, CardError> scan_item(ByteView bytes, bool outer_tag_allowed) {
  static const cbor_callbacks callbacks = scan_callbacks();
  Scan scan;
  Scanned scanned;
  if (outer_tag_allowed && !bytes.empty() && bytes[0] == cose_sign1_tag_byte) scanned.tag_header_size = 1;
  size_t offset = scanned.tag_header_size;
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  while (true) {
    if (offset >= bytes.size()) return fail(CardErrc::truncated, "the CBOR ends inside an item");
    cbor_decoder_result result = cbor_stream_decode(data + offset, bytes.size() - offset, &callbacks, &scan);
    if (result.status == CBOR_DECODER_NEDATA) return fail(CardErrc::truncated, "the CBOR ends inside an item");
    if (result.status != CBOR_DECODER_FINISHED || result.read == 0)
      return fail(CardErrc::malformed, "not well-formed CBOR");
    offset += result.read;
    if (scan.error) return Unexpected(*scan.error);
    if (scan.done()) {
      scanned.size = offset;
      return scanned;
    }
  }
}

// ---------------------------------------------------------------- libcbor items

struct ItemRelease {
  void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using Item = std::unique_ptr<cbor_item_t, ItemRelease>;

// libcbor returns null only when malloc fails, which nothing here can handle.
cbor_item_t* must(cbor_item_t* item) {
  if (item == nullptr) {
    std::fprintf(stderr, "tsunagu: CBOR encoding: out of memory\n");
    std::abort();
  }
  return item;
}

struct Loaded {
  Item item;            // without the tag
  bool tagged = false;  // with COSE_Sign1's tag
};

// Loads the one item of `bytes` once scan_item() has accepted it whole,
// without COSE_Sign1's tag (see cose_sign1_tag_byte).
Expected<Loaded, CardError> load(ByteView bytes, bool outer_tag_allowed) {
  auto scanned = scan_item(bytes, outer_tag_allowed);
  if (!scanned) return Unexpected(scanned.error());
  if (scanned->size != bytes.size()) return fail(CardErrc::trailing_bytes, "bytes after the CBOR item");
  ByteView content = bytes.subspan(scanned->tag_header_size);
  cbor_load_result result{};
  Item item(cbor_load(reinterpret_cast<const unsigned char*>(content.data()), content.size(), &result));
  if (item == nullptr || result.error.code != CBOR_ERR_NONE || result.read != content.size())
    return fail(CardErrc::malformed, "not well-formed CBOR");
  return Loaded{std::move(item), scanned->tag_header_size > 0};
}

Bytes serialize(const cbor_item_t* item) {
  unsigned char* buffer = nullptr;
  size_t allocated = 0;
  size_t length = cbor_serialize_alloc(item, &buffer, &allocated);
  if (length == 0 || buffer == nullptr) {
    std::fprintf(stderr, "tsunagu: CBOR encoding: out of memory\n");
    std::abort();
  }
  Bytes out(reinterpret_cast<const std::byte*>(buffer), reinterpret_cast<const std::byte*>(buffer) + length);
  std::free(buffer);
  return out;
}

// The shortest form (RFC 8949 section 4.2.1); cbor_build_uint64 would always write eight bytes.
cbor_item_t* uint_item(uint64_t value) {
  if (value <= UINT8_MAX) return must(cbor_build_uint8(static_cast<uint8_t>(value)));
  if (value <= UINT16_MAX) return must(cbor_build_uint16(static_cast<uint16_t>(value)));
  if (value <= UINT32_MAX) return must(cbor_build_uint32(static_cast<uint32_t>(value)));
  return must(cbor_build_uint64(value));
}
cbor_item_t* text_item(std::string_view text) { return must(cbor_build_stringn(text.data(), text.size())); }
cbor_item_t* bytes_item(ByteView bytes) {
  return must(cbor_build_bytestring(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

// Builds a definite map whose keys are small integers, added in ascending
// order (deterministic encoding, RFC 8949 section 4.2.1).
class MapBuilder {
 public:
  explicit MapBuilder(size_t capacity) : map_(must(cbor_new_definite_map(capacity))) {}
  MapBuilder& add(uint64_t key, cbor_item_t* value) {
    if (!cbor_map_add(map_.get(), cbor_pair{cbor_move(uint_item(key)), cbor_move(value)})) must(nullptr);
    return *this;
  }
  cbor_item_t* release() { return map_.release(); }

 private:
  Item map_;
};

cbor_item_t* array_of(size_t capacity) { return must(cbor_new_definite_array(capacity)); }
void push(cbor_item_t* array, cbor_item_t* value) {
  if (!cbor_array_push(array, cbor_move(value))) must(nullptr);
}

cbor_item_t* texts_item(const std::vector<std::string>& texts) {
  cbor_item_t* array = array_of(texts.size());
  for (const std::string& text : texts) push(array, text_item(text));
  return array;
}

// Card keys (docs/cards.md keeps the table).
namespace card_key {
constexpr uint64_t issuer_key_id = 1, serial = 2, card_id = 3, expires_at = 4, units_issued = 5, areas = 6;
constexpr uint64_t last = 6;
}  // namespace card_key
namespace area_key {
constexpr uint64_t code = 1, internet = 2, premium = 3, agents = 4;
constexpr uint64_t last = 4;
}  // namespace area_key
namespace update_key {
constexpr uint64_t issuer_key_id = 1, version = 2, issued_at = 3, areas = 4, revoked = 5;
constexpr uint64_t last = 5;
}  // namespace update_key
namespace rollover_key {
constexpr uint64_t old_key_id = 1, new_public_key = 2, issued_at = 3;
constexpr uint64_t last = 3;
}  // namespace rollover_key
namespace access_point_key {
constexpr uint64_t name = 1, node = 2, relays = 3, cost_per_minute = 4, tariff = 5, destinations = 6;
constexpr uint64_t last = 6;
}  // namespace access_point_key

cbor_item_t* access_point_item(const AccessPoint& point) {
  MapBuilder map(6);
  map.add(access_point_key::name, text_item(point.name)).add(access_point_key::node, text_item(point.node));
  if (!point.relays.empty()) map.add(access_point_key::relays, texts_item(point.relays));
  map.add(access_point_key::cost_per_minute, uint_item(point.cost_per_minute));
  if (!point.tariff.empty()) {
    cbor_item_t* bands = array_of(point.tariff.size());
    for (const TariffBand& band : point.tariff) {
      cbor_item_t* entry = array_of(3);
      push(entry, uint_item(band.start_minute));
      push(entry, uint_item(band.end_minute));
      push(entry, uint_item(band.cost_per_minute));
      push(bands, entry);
    }
    map.add(access_point_key::tariff, bands);
  }
  if (!point.destinations.empty()) map.add(access_point_key::destinations, texts_item(point.destinations));
  return map.release();
}

cbor_item_t* access_points_item(const std::vector<AccessPoint>& points) {
  cbor_item_t* array = array_of(points.size());
  for (const AccessPoint& point : points) push(array, access_point_item(point));
  return array;
}

cbor_item_t* areas_item(const std::vector<Area>& list) {
  cbor_item_t* areas = array_of(list.size());
  for (const Area& area : list) {
    MapBuilder entry(4);
    entry.add(area_key::code, text_item(area.code));
    if (!area.internet.empty()) entry.add(area_key::internet, access_points_item(area.internet));
    if (!area.premium.empty()) entry.add(area_key::premium, access_points_item(area.premium));
    if (!area.agents.empty()) entry.add(area_key::agents, access_points_item(area.agents));
    push(areas, entry.release());
  }
  return areas;
}

cbor_item_t* card_item(const Card& card) {
  MapBuilder map(6);
  map.add(card_key::issuer_key_id, bytes_item(card.issuer_key_id)).add(card_key::serial, uint_item(card.serial));
  cbor_item_t* id = array_of(3);
  push(id, uint_item(card.card_id.issue_date));
  push(id, uint_item(card.card_id.group));
  push(id, uint_item(card.card_id.sequence));
  map.add(card_key::card_id, id)
      .add(card_key::expires_at, uint_item(static_cast<uint64_t>(card.expires_at)))
      .add(card_key::units_issued, uint_item(card.units_issued));
  map.add(card_key::areas, areas_item(card.areas));
  return map.release();
}

cbor_item_t* update_item(const CardUpdate& update) {
  MapBuilder map(5);
  map.add(update_key::issuer_key_id, bytes_item(update.issuer_key_id))
      .add(update_key::version, uint_item(update.version))
      .add(update_key::issued_at, uint_item(static_cast<uint64_t>(update.issued_at)));
  if (!update.areas.empty()) map.add(update_key::areas, areas_item(update.areas));
  if (!update.revoked.empty()) {
    Bytes serials;
    for (uint64_t serial : update.revoked)
      for (int shift = 56; shift >= 0; shift -= 8) serials.push_back(static_cast<std::byte>(serial >> shift));
    map.add(update_key::revoked, bytes_item(serials));
  }
  return map.release();
}

Bytes protected_header_bytes() {
  MapBuilder map(1);
  map.add(cose_header_algorithm, must(cbor_build_negint8(static_cast<uint8_t>(-1 - cose_algorithm_eddsa))));
  Item item(map.release());
  return serialize(item.get());
}

// RFC 9052 section 4.4: what the signature covers.
Bytes signature_input(ByteView protected_header, ByteView payload) {
  Item structure(array_of(4));
  push(structure.get(), text_item("Signature1"));
  push(structure.get(), bytes_item(protected_header));
  push(structure.get(), bytes_item({}));
  push(structure.get(), bytes_item(payload));
  return serialize(structure.get());
}

// ---------------------------------------------------------------- field reading

bool is_uint(const cbor_item_t* item) { return item != nullptr && cbor_isa_uint(item); }

Bytes bytes_of(const cbor_item_t* item) {
  const auto* data = reinterpret_cast<const std::byte*>(cbor_bytestring_handle(item));
  return Bytes(data, data + cbor_bytestring_length(item));
}

// A map's values by integer key 1..N. Keys must be unsigned integers within
// 1..N (an unknown key is refused: a new field is a new format, docs/cards.md)
// and appear once.
template <size_t N>
Expected<std::array<const cbor_item_t*, N + 1>, CardError> fields_of(const cbor_item_t* item, const char* what) {
  if (item == nullptr || !cbor_isa_map(item) || !cbor_map_is_definite(item)) return field_error(what);
  std::array<const cbor_item_t*, N + 1> fields{};
  const cbor_pair* pairs = cbor_map_handle(item);
  for (size_t i = 0; i < cbor_map_size(item); ++i) {
    if (!is_uint(pairs[i].key)) return field_error(what);
    uint64_t key = cbor_get_int(pairs[i].key);
    if (key == 0 || key > N || fields[key] != nullptr) return field_error(what);
    fields[key] = pairs[i].value;
  }
  return fields;
}

Expected<uint64_t, CardError> uint_of(const cbor_item_t* item, uint64_t max, const char* what) {
  if (!is_uint(item) || cbor_get_int(item) > max) return field_error(what);
  return cbor_get_int(item);
}

Expected<std::string, CardError> text_of(const cbor_item_t* item, const char* what) {
  if (item == nullptr || !cbor_isa_string(item) || !cbor_string_is_definite(item)) return field_error(what);
  const auto* data = reinterpret_cast<const char*>(cbor_string_handle(item));
  return std::string(data, cbor_string_length(item));
}

Expected<std::span<cbor_item_t*>, CardError> array_of_items(const cbor_item_t* item, size_t max, const char* what) {
  if (item == nullptr || !cbor_isa_array(item) || !cbor_array_is_definite(item) || cbor_array_size(item) > max)
    return field_error(what);
  return std::span<cbor_item_t*>(cbor_array_handle(item), cbor_array_size(item));
}

Expected<std::vector<std::string>, CardError> texts_of(const cbor_item_t* item, size_t max, const char* what) {
  std::vector<std::string> out;
  if (item == nullptr) return out;
  auto items = array_of_items(item, max, what);
  if (!items) return Unexpected(items.error());
  for (const cbor_item_t* entry : *items) {
    auto text = text_of(entry, what);
    if (!text) return Unexpected(text.error());
    out.push_back(std::move(*text));
  }
  return out;
}

Expected<AccessPoint, CardError> read_access_point(const cbor_item_t* item) {
  auto fields = fields_of<access_point_key::last>(item, "an access point is not a map of known keys");
  if (!fields) return Unexpected(fields.error());
  const auto& f = *fields;
  AccessPoint point;
  auto name = text_of(f[access_point_key::name], "access point name");
  auto node = text_of(f[access_point_key::node], "access point node");
  auto relays = texts_of(f[access_point_key::relays], max_relays, "access point relays");
  auto cost = uint_of(f[access_point_key::cost_per_minute], max_cost_per_minute, "access point cost per minute");
  auto destinations = texts_of(f[access_point_key::destinations], max_destinations, "access point destinations");
  if (!name) return Unexpected(name.error());
  if (!node) return Unexpected(node.error());
  if (!relays) return Unexpected(relays.error());
  if (!cost) return Unexpected(cost.error());
  if (!destinations) return Unexpected(destinations.error());
  point.name = std::move(*name);
  point.node = std::move(*node);
  point.relays = std::move(*relays);
  point.cost_per_minute = static_cast<uint32_t>(*cost);
  point.destinations = std::move(*destinations);
  if (f[access_point_key::tariff] != nullptr) {
    auto bands = array_of_items(f[access_point_key::tariff], max_tariff_bands, "tariff");
    if (!bands) return Unexpected(bands.error());
    for (const cbor_item_t* band_item : *bands) {
      auto parts = array_of_items(band_item, 3, "tariff band");
      if (!parts) return Unexpected(parts.error());
      if (parts->size() != 3) return field_error("tariff band is not [start, end, cost]");
      auto start = uint_of((*parts)[0], minutes_per_day, "tariff band start");
      auto end = uint_of((*parts)[1], minutes_per_day, "tariff band end");
      auto band_cost = uint_of((*parts)[2], max_cost_per_minute, "tariff band cost");
      if (!start) return Unexpected(start.error());
      if (!end) return Unexpected(end.error());
      if (!band_cost) return Unexpected(band_cost.error());
      point.tariff.push_back(TariffBand{static_cast<uint16_t>(*start), static_cast<uint16_t>(*end),
                                        static_cast<uint32_t>(*band_cost)});
    }
  }
  return point;
}

Expected<std::vector<AccessPoint>, CardError> read_access_points(const cbor_item_t* item, const char* what) {
  std::vector<AccessPoint> out;
  if (item == nullptr) return out;
  auto items = array_of_items(item, max_access_points_per_list, what);
  if (!items) return Unexpected(items.error());
  for (const cbor_item_t* entry : *items) {
    auto point = read_access_point(entry);
    if (!point) return Unexpected(point.error());
    out.push_back(std::move(*point));
  }
  return out;
}

Expected<Area, CardError> read_area(const cbor_item_t* item) {
  auto fields = fields_of<area_key::last>(item, "an area is not a map of known keys");
  if (!fields) return Unexpected(fields.error());
  const auto& f = *fields;
  auto code = text_of(f[area_key::code], "area code");
  if (!code) return Unexpected(code.error());
  auto internet = read_access_points(f[area_key::internet], "internet access points");
  if (!internet) return Unexpected(internet.error());
  auto premium = read_access_points(f[area_key::premium], "premium access points");
  if (!premium) return Unexpected(premium.error());
  auto agents = read_access_points(f[area_key::agents], "connection agents");
  if (!agents) return Unexpected(agents.error());
  return Area{std::move(*code), std::move(*internet), std::move(*premium), std::move(*agents)};
}

// The issuer key ID field of a card or an update (its size is validated with the rest).
Expected<Bytes, CardError> key_id_of(const cbor_item_t* item) {
  if (item == nullptr || !cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
    return field_error("issuer key ID");
  return bytes_of(item);
}

Expected<std::vector<Area>, CardError> read_areas(const cbor_item_t* item) {
  auto items = array_of_items(item, max_areas, "areas");
  if (!items) return Unexpected(items.error());
  std::vector<Area> areas;
  for (const cbor_item_t* entry : *items) {
    auto area = read_area(entry);
    if (!area) return Unexpected(area.error());
    areas.push_back(std::move(*area));
  }
  return areas;
}

Expected<CardUpdate, CardError> read_update(const cbor_item_t* item) {
  auto fields = fields_of<update_key::last>(item, "the update is not a map of known keys");
  if (!fields) return Unexpected(fields.error());
  const auto& f = *fields;
  CardUpdate update;
  auto key_id = key_id_of(f[update_key::issuer_key_id]);
  if (!key_id) return Unexpected(key_id.error());
  update.issuer_key_id = std::move(*key_id);
  auto version = uint_of(f[update_key::version], INT64_MAX, "version");
  if (!version) return Unexpected(version.error());
  update.version = *version;
  auto issued = uint_of(f[update_key::issued_at], INT64_MAX, "issued at");
  if (!issued) return Unexpected(issued.error());
  update.issued_at = static_cast<int64_t>(*issued);
  if (f[update_key::areas] != nullptr) {
    auto areas = read_areas(f[update_key::areas]);
    if (!areas) return Unexpected(areas.error());
    update.areas = std::move(*areas);
  }
  if (const cbor_item_t* revoked = f[update_key::revoked]; revoked != nullptr) {
    if (!cbor_isa_bytestring(revoked) || !cbor_bytestring_is_definite(revoked))
      return field_error("revoked serials are not a byte string");
    Bytes serials = bytes_of(revoked);
    if (serials.empty() || serials.size() % 8 != 0 || serials.size() / 8 > max_revoked_serials)
      return field_error("revoked serials: 1 to 1024 8-byte numbers");
    for (size_t at = 0; at < serials.size(); at += 8) {
      uint64_t serial = 0;
      for (size_t i = 0; i < 8; ++i) serial = (serial << 8) | std::to_integer<uint64_t>(serials[at + i]);
      update.revoked.push_back(serial);
    }
  }
  auto valid = validate_card_update(update);
  if (!valid) return Unexpected(valid.error());
  return update;
}

Expected<void, CardError> validate_key_rollover(const KeyRollover& rollover) {
  if (rollover.old_key_id.size() != issuer_key_id_size) return field_error("old issuer key ID is not 8 bytes");
  if (rollover.new_public_key.size() != 32) return field_error("the new public key is not 32 bytes");
  if (issuer_key_id(rollover.new_public_key) == rollover.old_key_id)
    return field_error("the new key is the old key");
  if (rollover.issued_at <= 0) return field_error("issued at must be a positive Unix time");
  return {};
}

Expected<KeyRollover, CardError> read_rollover(const cbor_item_t* item) {
  auto fields = fields_of<rollover_key::last>(item, "the key rollover is not a map of known keys");
  if (!fields) return Unexpected(fields.error());
  const auto& f = *fields;
  KeyRollover rollover;
  auto key_id = key_id_of(f[rollover_key::old_key_id]);
  if (!key_id) return Unexpected(key_id.error());
  rollover.old_key_id = std::move(*key_id);
  const cbor_item_t* key = f[rollover_key::new_public_key];
  if (key == nullptr || !cbor_isa_bytestring(key) || !cbor_bytestring_is_definite(key))
    return field_error("new public key");
  rollover.new_public_key = bytes_of(key);
  auto issued = uint_of(f[rollover_key::issued_at], INT64_MAX, "issued at");
  if (!issued) return Unexpected(issued.error());
  rollover.issued_at = static_cast<int64_t>(*issued);
  auto valid = validate_key_rollover(rollover);
  if (!valid) return Unexpected(valid.error());
  return rollover;
}

Expected<Card, CardError> read_card(const cbor_item_t* item) {
  auto fields = fields_of<card_key::last>(item, "the card is not a map of known keys");
  if (!fields) return Unexpected(fields.error());
  const auto& f = *fields;
  Card card;
  auto key_id = key_id_of(f[card_key::issuer_key_id]);
  if (!key_id) return Unexpected(key_id.error());
  card.issuer_key_id = std::move(*key_id);
  auto serial = uint_of(f[card_key::serial], UINT64_MAX, "serial");
  if (!serial) return Unexpected(serial.error());
  card.serial = *serial;
  auto id = array_of_items(f[card_key::card_id], 3, "card ID");
  if (!id) return Unexpected(id.error());
  if (id->size() != 3) return field_error("card ID is not [date, group, sequence]");
  auto date = uint_of((*id)[0], UINT32_MAX, "card ID date");
  auto group = uint_of((*id)[1], UINT32_MAX, "card ID group");
  auto sequence = uint_of((*id)[2], UINT32_MAX, "card ID sequence");
  if (!date) return Unexpected(date.error());
  if (!group) return Unexpected(group.error());
  if (!sequence) return Unexpected(sequence.error());
  card.card_id = CardId{static_cast<uint32_t>(*date), static_cast<uint32_t>(*group), static_cast<uint32_t>(*sequence)};
  auto expires = uint_of(f[card_key::expires_at], INT64_MAX, "expiry");
  if (!expires) return Unexpected(expires.error());
  card.expires_at = static_cast<int64_t>(*expires);
  if (f[card_key::units_issued] != nullptr) {
    auto units = uint_of(f[card_key::units_issued], INT64_MAX, "units issued");
    if (!units) return Unexpected(units.error());
    card.units_issued = *units;
  }
  auto areas = read_areas(f[card_key::areas]);
  if (!areas) return Unexpected(areas.error());
  card.areas = std::move(*areas);
  auto valid = validate_card(card);
  if (!valid) return Unexpected(valid.error());
  return card;
}

// ---------------------------------------------------------------- validation

bool valid_text(std::string_view text) {
  return !text.empty() && text.size() <= max_text_size &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool valid_date(uint32_t yyyymmdd) {
  uint32_t year = yyyymmdd / 10000, month = yyyymmdd / 100 % 100, day = yyyymmdd % 100;
  return year >= 2000 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

bool valid_relay(std::string_view relay) {
  return valid_text(relay) && (relay.starts_with("stun:") || relay.starts_with("turn:") || relay.starts_with("turns:"));
}

Expected<void, CardError> validate_access_points(const std::vector<AccessPoint>& points, std::set<std::string>& names) {
  if (points.size() > max_access_points_per_list) return field_error("more than 16 access points in a list");
  for (const AccessPoint& point : points) {
    if (!valid_text(point.name)) return field_error("access point name (1-255 printable ASCII characters)");
    if (!names.insert(point.name).second) return field_error("access point names must be unique on a card");
    if (!valid_text(point.node)) return field_error("access point node (1-255 printable ASCII characters)");
    if (point.relays.size() > max_relays) return field_error("more than 8 relays");
    for (const std::string& relay : point.relays)
      if (!valid_relay(relay)) return field_error("a relay is not a stun:, turn: or turns: URI");
    if (point.cost_per_minute > max_cost_per_minute) return field_error("cost per minute above 1000000");
    if (point.tariff.size() > max_tariff_bands) return field_error("more than 24 tariff bands");
    int previous_end = 0;
    for (const TariffBand& band : point.tariff) {
      if (band.start_minute < previous_end || band.start_minute >= band.end_minute ||
          band.end_minute > minutes_per_day)
        return field_error("tariff bands must be in order, not overlap, and lie within 0..1440");
      if (band.cost_per_minute > max_cost_per_minute) return field_error("tariff band cost above 1000000");
      previous_end = band.end_minute;
    }
    if (point.destinations.size() > max_destinations) return field_error("more than 32 destinations");
    for (const std::string& prefix : point.destinations)
      if (!valid_text(prefix)) return field_error("a destination prefix (1-255 printable ASCII characters)");
  }
  return {};
}

// COSE_Sign1 over `payload` under `private_key` (whose kid is `key_id`).
Bytes sign_payload(const Bytes& payload, ByteView private_key, const Bytes& key_id) {
  Bytes protected_header = protected_header_bytes();
  Bytes signature = security::ed25519_sign(private_key, signature_input(protected_header, payload));
  Item envelope(array_of(4));
  push(envelope.get(), bytes_item(protected_header));
  MapBuilder unprotected(1);
  unprotected.add(cose_header_key_id, bytes_item(key_id));
  push(envelope.get(), unprotected.release());
  push(envelope.get(), bytes_item(payload));
  push(envelope.get(), bytes_item(signature));
  Bytes out = serialize(envelope.get());
  out.insert(out.begin(), cose_sign1_tag_byte);
  return out;
}

// The envelope whose signature verifies under the trusted issuer its kid names.
Expected<CardEnvelope, CardError> verified_envelope(ByteView bytes, std::span<const TrustedIssuer> trusted) {
  auto envelope = read_envelope(bytes);
  if (!envelope) return Unexpected(envelope.error());
  auto issuer = std::find_if(trusted.begin(), trusted.end(),
                             [&](const TrustedIssuer& t) { return t.key_id == envelope->key_id; });
  if (issuer == trusted.end()) return fail(CardErrc::unknown_key, "no trusted issuer has this kid");
  if (!security::ed25519_verify(issuer->public_key,
                                signature_input(envelope->protected_header, envelope->payload), envelope->signature))
    return fail(CardErrc::bad_signature, "the signature does not verify under the issuer's key");
  return envelope;
}

}  // namespace

const char* card_error_label(CardErrc code) {
  switch (code) {
    case CardErrc::too_large: return "too large";
    case CardErrc::truncated: return "truncated";
    case CardErrc::malformed: return "malformed";
    case CardErrc::limit_exceeded: return "limit exceeded";
    case CardErrc::trailing_bytes: return "trailing bytes";
    case CardErrc::not_cose_sign1: return "not COSE_Sign1";
    case CardErrc::wrong_algorithm: return "wrong algorithm";
    case CardErrc::unknown_key: return "unknown key";
    case CardErrc::bad_signature: return "bad signature";
    case CardErrc::malformed_field: return "malformed field";
    case CardErrc::key_mismatch: return "key mismatch";
    case CardErrc::expired: return "expired";
  }
  return "unknown";
}

Bytes issuer_key_id(ByteView public_key) {
  Bytes digest = security::sha256(public_key);
  digest.resize(issuer_key_id_size);
  return digest;
}

Expected<void, CardError> validate_card(const Card& card) {
  if (card.issuer_key_id.size() != issuer_key_id_size) return field_error("issuer key ID is not 8 bytes");
  if (!valid_date(card.card_id.issue_date)) return field_error("card ID date is not a YYYYMMDD date");
  if (card.card_id.group > 9999) return field_error("card ID group above 9999");
  if (card.card_id.sequence > 999999) return field_error("card ID sequence above 999999");
  if (card.expires_at <= 0) return field_error("expiry must be a positive Unix time");
  if (card.units_issued > static_cast<uint64_t>(INT64_MAX)) return field_error("units issued out of range");
  return validate_areas(card.areas);
}

Expected<void, CardError> validate_areas(const std::vector<Area>& areas) {
  if (areas.empty() || areas.size() > max_areas) return field_error("a card holds 1 to 64 areas");
  std::set<std::string> codes, names;
  for (const Area& area : areas) {
    if (!valid_text(area.code)) return field_error("area code (1-255 printable ASCII characters)");
    if (!codes.insert(area.code).second) return field_error("area codes must be unique on a card");
    if (area.internet.empty() && area.premium.empty() && area.agents.empty())
      return field_error("an area without any access point");
    for (const auto* list : {&area.internet, &area.premium, &area.agents}) {
      auto valid = validate_access_points(*list, names);
      if (!valid) return valid;
    }
  }
  return {};
}

Expected<Bytes, CardError> encode_card_payload(const Card& card) {
  auto valid = validate_card(card);
  if (!valid) return Unexpected(valid.error());
  Item item(card_item(card));
  Bytes payload = serialize(item.get());
  // The envelope adds about 90 bytes; a card that would not decode is not signed.
  if (payload.size() + 128 > max_card_size) return fail(CardErrc::too_large, "the card is above 16 KiB");
  return payload;
}

Expected<Bytes, CardError> sign_card(const Card& card, ByteView private_key) {
  Bytes public_key = security::ed25519_public_key(private_key);
  if (public_key.empty()) return fail(CardErrc::key_mismatch, "the private key is not a 32-byte Ed25519 seed");
  Bytes key_id = issuer_key_id(public_key);
  if (key_id != card.issuer_key_id) return fail(CardErrc::key_mismatch, "the card names another issuer key");
  auto payload = encode_card_payload(card);
  if (!payload) return Unexpected(payload.error());
  return sign_payload(*payload, private_key, key_id);
}

Expected<void, CardError> validate_card_update(const CardUpdate& update) {
  if (update.issuer_key_id.size() != issuer_key_id_size) return field_error("issuer key ID is not 8 bytes");
  if (update.version == 0 || update.version > static_cast<uint64_t>(INT64_MAX))
    return field_error("version must be 1 or more");
  if (update.issued_at <= 0) return field_error("issued at must be a positive Unix time");
  if (update.revoked.size() > max_revoked_serials) return field_error("more than 1024 revoked serials");
  if (!std::is_sorted(update.revoked.begin(), update.revoked.end()) ||
      std::adjacent_find(update.revoked.begin(), update.revoked.end()) != update.revoked.end())
    return field_error("revoked serials must be ascending, each once");
  if (update.areas.empty()) return {};
  return validate_areas(update.areas);
}

Expected<Bytes, CardError> sign_card_update(const CardUpdate& update, ByteView private_key) {
  Bytes public_key = security::ed25519_public_key(private_key);
  if (public_key.empty()) return fail(CardErrc::key_mismatch, "the private key is not a 32-byte Ed25519 seed");
  Bytes key_id = issuer_key_id(public_key);
  if (key_id != update.issuer_key_id) return fail(CardErrc::key_mismatch, "the update names another issuer key");
  auto valid = validate_card_update(update);
  if (!valid) return Unexpected(valid.error());
  Item item(update_item(update));
  Bytes signed_update = sign_payload(serialize(item.get()), private_key, key_id);
  if (signed_update.size() > max_card_update_size)
    return fail(CardErrc::too_large, "the update is above 12 KiB (fewer areas or revoked serials)");
  return signed_update;
}

Expected<CardUpdate, CardError> parse_card_update_payload(ByteView payload) {
  if (payload.size() > max_card_update_size) return fail(CardErrc::too_large, "an update is at most 12 KiB");
  auto loaded = load(payload, false);
  if (!loaded) return Unexpected(loaded.error());
  return read_update(loaded->item.get());
}

Expected<CardUpdate, CardError> decode_card_update(ByteView bytes, std::span<const TrustedIssuer> trusted) {
  if (bytes.size() > max_card_update_size) return fail(CardErrc::too_large, "an update is at most 12 KiB");
  auto envelope = verified_envelope(bytes, trusted);
  if (!envelope) return Unexpected(envelope.error());
  auto update = parse_card_update_payload(envelope->payload);
  if (!update) return update;
  if (update->issuer_key_id != envelope->key_id)
    return fail(CardErrc::key_mismatch, "the update's issuer key ID is not the kid it was signed under");
  return update;
}

Expected<Bytes, CardError> sign_key_rollover(const KeyRollover& rollover, ByteView old_private_key) {
  Bytes public_key = security::ed25519_public_key(old_private_key);
  if (public_key.empty()) return fail(CardErrc::key_mismatch, "the private key is not a 32-byte Ed25519 seed");
  Bytes key_id = issuer_key_id(public_key);
  if (key_id != rollover.old_key_id) return fail(CardErrc::key_mismatch, "the statement names another old key");
  auto valid = validate_key_rollover(rollover);
  if (!valid) return Unexpected(valid.error());
  MapBuilder map(3);
  map.add(rollover_key::old_key_id, bytes_item(rollover.old_key_id))
      .add(rollover_key::new_public_key, bytes_item(rollover.new_public_key))
      .add(rollover_key::issued_at, uint_item(static_cast<uint64_t>(rollover.issued_at)));
  Item item(map.release());
  return sign_payload(serialize(item.get()), old_private_key, key_id);
}

Expected<KeyRollover, CardError> parse_key_rollover_payload(ByteView payload) {
  if (payload.size() > max_key_rollover_size) return fail(CardErrc::too_large, "a key rollover is at most 512 bytes");
  auto loaded = load(payload, false);
  if (!loaded) return Unexpected(loaded.error());
  return read_rollover(loaded->item.get());
}

Expected<KeyRollover, CardError> decode_key_rollover(ByteView bytes, std::span<const TrustedIssuer> trusted) {
  if (bytes.size() > max_key_rollover_size) return fail(CardErrc::too_large, "a key rollover is at most 512 bytes");
  auto envelope = verified_envelope(bytes, trusted);
  if (!envelope) return Unexpected(envelope.error());
  auto rollover = parse_key_rollover_payload(envelope->payload);
  if (!rollover) return rollover;
  if (rollover->old_key_id != envelope->key_id)
    return fail(CardErrc::key_mismatch, "the statement's old key ID is not the kid it was signed under");
  return rollover;
}

std::vector<TrustedIssuer> follow_key_rollovers(std::span<const TrustedIssuer> trusted,
                                                std::span<const Bytes> statements) {
  std::vector<TrustedIssuer> known(trusted.begin(), trusted.end());
  std::vector<TrustedIssuer> added;
  std::vector<bool> used(statements.size(), false);
  // Each pass adds at least one key or ends, so at most statements.size() passes.
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < statements.size(); ++i) {
      if (used[i]) continue;
      auto rollover = decode_key_rollover(statements[i], known);
      if (!rollover) continue;  // forged, or of a key not reached (yet)
      used[i] = true;
      TrustedIssuer next{issuer_key_id(rollover->new_public_key), rollover->new_public_key};
      if (std::any_of(known.begin(), known.end(), [&](const TrustedIssuer& t) { return t.key_id == next.key_id; }))
        continue;
      known.push_back(next);
      added.push_back(std::move(next));
      progress = true;
    }
  }
  return added;
}

Expected<CardEnvelope, CardError> read_envelope(ByteView bytes) {
  if (bytes.size() > max_card_size) return fail(CardErrc::too_large, "a card file is at most 16 KiB");
  auto loaded = load(bytes, true);
  if (!loaded) return Unexpected(loaded.error());
  if (!loaded->tagged) return fail(CardErrc::not_cose_sign1, "not tagged COSE_Sign1 (18)");
  const cbor_item_t* content = loaded->item.get();
  if (!cbor_isa_array(content) || cbor_array_size(content) != 4)
    return fail(CardErrc::not_cose_sign1, "COSE_Sign1 is not a four-element array");
  cbor_item_t** parts = cbor_array_handle(content);
  if (!cbor_isa_bytestring(parts[0]) || !cbor_isa_map(parts[1]) || !cbor_isa_bytestring(parts[2]) ||
      !cbor_isa_bytestring(parts[3]))
    return fail(CardErrc::not_cose_sign1, "COSE_Sign1 is not [bstr, map, bstr, bstr]");
  CardEnvelope envelope;
  envelope.protected_header = bytes_of(parts[0]);
  envelope.payload = bytes_of(parts[2]);
  envelope.signature = bytes_of(parts[3]);

  auto header = load(envelope.protected_header, false);
  if (!header) return fail(CardErrc::not_cose_sign1, "the protected header is not CBOR");
  const cbor_item_t* header_map = header->item.get();
  if (!cbor_isa_map(header_map) || cbor_map_size(header_map) != 1)
    return fail(CardErrc::wrong_algorithm, "the protected header is not {1: -8}");
  const cbor_pair& algorithm = cbor_map_handle(header_map)[0];
  if (!is_uint(algorithm.key) || cbor_get_int(algorithm.key) != cose_header_algorithm ||
      !cbor_isa_negint(algorithm.value) ||
      cbor_get_int(algorithm.value) != static_cast<uint64_t>(-1 - cose_algorithm_eddsa))
    return fail(CardErrc::wrong_algorithm, "the protected header is not {1: -8} (EdDSA)");

  const cbor_pair* unprotected = cbor_map_handle(parts[1]);
  for (size_t i = 0; i < cbor_map_size(parts[1]); ++i) {
    if (!is_uint(unprotected[i].key) || cbor_get_int(unprotected[i].key) != cose_header_key_id)
      return fail(CardErrc::not_cose_sign1, "the unprotected header holds more than the kid");
    if (!cbor_isa_bytestring(unprotected[i].value)) return fail(CardErrc::not_cose_sign1, "the kid is not bytes");
    if (i > 0) return fail(CardErrc::not_cose_sign1, "the kid appears twice");
    envelope.key_id = bytes_of(unprotected[i].value);
  }
  if (envelope.key_id.empty() || envelope.key_id.size() > max_key_id_size)
    return fail(CardErrc::not_cose_sign1, "no kid of 1 to 32 bytes");
  return envelope;
}

Expected<Card, CardError> parse_card_payload(ByteView payload) {
  if (payload.size() > max_card_size) return fail(CardErrc::too_large, "a card is at most 16 KiB");
  auto loaded = load(payload, false);
  if (!loaded) return Unexpected(loaded.error());
  return read_card(loaded->item.get());
}

Expected<Card, CardError> decode_card(ByteView bytes, std::span<const TrustedIssuer> trusted, int64_t now) {
  auto envelope = verified_envelope(bytes, trusted);
  if (!envelope) return Unexpected(envelope.error());
  auto card = parse_card_payload(envelope->payload);
  if (!card) return card;
  if (card->issuer_key_id != envelope->key_id)
    return fail(CardErrc::key_mismatch, "the card's issuer key ID is not the kid it was signed under");
  if (now >= card->expires_at) return fail(CardErrc::expired, "the card has expired");
  return card;
}

}  // namespace tsunagu::cards
