#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "proto/signalling.hpp"
#include "terminal/voicemail_receiver.hpp"

using namespace tsunagu;
namespace sig = tsunagu::proto;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-vm-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

Bytes chunk(uint64_t id, uint64_t size, uint64_t offset, std::string_view data, const std::string& mailbox = "4106@acme") {
  proto::TransactionId tid{};
  tid.bytes[0] = std::byte{static_cast<unsigned char>(offset)};
  proto::MessageBuilder b(proto::MessageClass::request, sig::method::voicemail_deliver, tid);
  b.add_u32(sig::attr::protocol_version, 1);
  b.add_string(sig::attr::user_id, mailbox);
  b.add_u64(sig::attr::voicemail_id, id);
  b.add_u64(sig::attr::voicemail_size, size);
  b.add_u64(sig::attr::voicemail_time, 1'790'000'000);
  b.add_string(sig::attr::caller_id, "alice");
  b.add_u64(sig::attr::voicemail_offset, offset);
  b.add(sig::attr::voicemail_data, as_bytes(data));
  return b.finish();
}

// The answer's error code (0 for success) and VOICEMAIL-OFFSET.
std::pair<uint16_t, uint64_t> send(terminal::VoicemailReceiver& receiver, const Bytes& request,
                                   std::string* saved = nullptr) {
  auto decoded = proto::decode(request);
  REQUIRE(decoded);
  Bytes encoded = receiver.handle(decoded->message, saved);  // decode() returns views into it
  auto answer = proto::decode(encoded);
  REQUIRE(answer);
  if (answer->message.message_class == proto::MessageClass::error) {
    auto code = proto::read_error_code(*answer->message.find(proto::attr::error_code));
    return {code->code, 0};
  }
  return {0, *proto::read_u64(*answer->message.find(sig::attr::voicemail_offset))};
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("chunks in order make one file, saved before the last answer") {
  TempDir dir;
  terminal::VoicemailReceiver receiver(dir.path.string());
  std::string saved;
  CHECK(send(receiver, chunk(7, 10, 0, "01234"), &saved) == std::pair<uint16_t, uint64_t>{0, 5});
  CHECK(saved.empty());
  CHECK(std::filesystem::is_empty(dir.path));
  CHECK(send(receiver, chunk(7, 10, 5, "56789"), &saved) == std::pair<uint16_t, uint64_t>{0, 10});
  REQUIRE(!saved.empty());
  CHECK(read_file(saved) == "0123456789");
  CHECK(std::filesystem::path(saved).filename().string().ends_with("-alice-7.msg"));
}

TEST_CASE("a chunk out of order is refused; starting again at offset 0 works") {
  TempDir dir;
  terminal::VoicemailReceiver receiver(dir.path.string());
  CHECK(send(receiver, chunk(8, 10, 5, "56789")).first == sig::error::bad_request);  // nothing held yet
  CHECK(send(receiver, chunk(8, 10, 0, "01234")).second == 5);
  CHECK(send(receiver, chunk(8, 10, 0, "01234")).second == 5);  // a repeat restarts the message
  CHECK(send(receiver, chunk(8, 10, 7, "789")).first == sig::error::bad_request);
  CHECK(send(receiver, chunk(8, 12, 5, "56789")).first == sig::error::bad_request);  // size changed
  std::string saved;
  CHECK(send(receiver, chunk(8, 10, 5, "56789"), &saved).second == 10);
  CHECK(read_file(saved) == "0123456789");
}

TEST_CASE("too large, more bytes than announced, or missing attributes are refused") {
  TempDir dir;
  terminal::VoicemailReceiver receiver(dir.path.string());
  CHECK(send(receiver, chunk(9, terminal::max_received_voicemail + 1, 0, "x")).first == sig::error::too_large);
  CHECK(send(receiver, chunk(9, 3, 0, "four")).first == sig::error::bad_request);
  proto::TransactionId tid{};
  proto::MessageBuilder bare(proto::MessageClass::request, sig::method::voicemail_deliver, tid);
  bare.add_u32(sig::attr::protocol_version, 1);
  CHECK(send(receiver, bare.finish()).first == sig::error::bad_request);
  CHECK(std::filesystem::is_empty(dir.path));
}
