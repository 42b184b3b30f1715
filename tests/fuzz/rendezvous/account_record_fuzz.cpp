// Fuzz target: the node's durable account and login records. Arbitrary bytes
// (a damaged or foreign data file) must decode or be refused, never crash.
// Whatever decodes must re-encode to a record that decodes equal, and that
// re-encoding is canonical (encoding it again gives the same bytes). A
// mismatch aborts, so libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rendezvous/account.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// Re-encoding drops unknown, empty and repeated fields but always writes the
// time field (created_at, login time: 1 + 2 + 8 bytes), so it can outgrow its
// input by that one field only. When it then passes max_record_size, decode
// refuses it; the check below keeps to records that fit.
constexpr size_t always_written_field = 11;

template <class Record, class Encode, class Decode>
void check_round_trip(ByteView input, Encode encode, Decode decode) {
  std::optional<Record> first = decode(input);
  if (!first) return;
  Bytes again = encode(*first);
  require(again.size() <= input.size() + always_written_field);
  if (again.size() > max_record_size) return;
  std::optional<Record> second = decode(again);
  require(second.has_value());
  require(*second == *first);
  require(encode(*second) == again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  check_round_trip<Account>(input, encode_account, decode_account);
  check_round_trip<LoginRecord>(input, encode_login_record, decode_login_record);
  if (auto account = decode_account(input)) {
    require(!account->user_id.empty());
    // The generation-only read (a login's and a request's check) agrees with the full decode.
    auto generation = decode_account_generation(input);
    require(generation.has_value() && *generation == account->generation);
  }
  return 0;
}
