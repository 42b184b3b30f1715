// Fuzz target: the record values of DIRECTORY-ENTRY, DIRECTORY-CATEGORY and
// VOICEMAIL-ENTRY, which come from the network, and a profile_set request's
// fields. Arbitrary bytes decode or are refused, never crash; whatever decodes
// re-encodes to the same record (the encodings are canonical).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "proto/stun_message.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

template <class Record, class Encode, class Decode>
void check_round_trip(ByteView input, Encode encode, Decode decode_record) {
  std::optional<Record> first = decode_record(input);
  if (!first) return;
  require(input.size() <= max_directory_record_size);
  Bytes again = encode(*first);
  require(again.size() == input.size());
  require(std::equal(again.begin(), again.end(), input.begin()));
  std::optional<Record> second = decode_record(again);
  require(second.has_value() && *second == *first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  check_round_trip<DirectoryEntry>(input, encode_directory_entry, decode_directory_entry);
  check_round_trip<CategoryCount>(input, encode_category_count, decode_category_count);
  check_round_trip<VoicemailEntry>(input, encode_voicemail_entry, decode_voicemail_entry);
  // The same bytes as a request: the profile fields it carries are read and checked.
  if (auto message = decode(input)) {
    if (auto change = read_profile_change(message->message)) (void)profile_change_error(*change);
  }
  return 0;
}
