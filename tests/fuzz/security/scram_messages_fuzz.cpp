// Fuzz target: the four SCRAM message parsers and the stored-credentials
// decoder. Whatever parses must build back to text that parses to the same
// values; the node parses client messages, the terminal server messages, so
// every input goes through all of them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "security/scram.hpp"

using namespace tsunagu;
using namespace tsunagu::security::scram;

namespace {
void require(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto first = parse_client_first(text)) {
    require(text.size() <= max_message_size);
    auto again = parse_client_first(build_client_first(first->username, first->nonce));
    require(again.has_value());
    require(again->username == first->username && again->nonce == first->nonce);
  }
  if (auto server_first = parse_server_first(text)) {
    require(server_first->iterations >= min_iterations && server_first->iterations <= max_iterations);
    auto again = parse_server_first(build_server_first(*server_first));
    require(again.has_value());
    require(again->nonce == server_first->nonce && again->salt == server_first->salt &&
            again->iterations == server_first->iterations);
  }
  if (auto final_message = parse_client_final(text)) {
    require(final_message->proof.size() == key_size);
    require(text.starts_with(final_message->without_proof));
    require(build_client_final(final_message->nonce, final_message->proof).size() <= text.size());
  }
  if (auto server_final = parse_server_final(text)) {
    require(server_final->error.empty() != server_final->verifier.empty());
    auto again = parse_server_final(build_server_final(*server_final));
    require(again.has_value() && again->verifier == server_final->verifier && again->error == server_final->error);
  }
  if (auto credentials = decode_credentials(text)) {
    auto again = decode_credentials(encode_credentials(*credentials));
    require(again.has_value() && *again == *credentials);
  }
  return 0;
}
