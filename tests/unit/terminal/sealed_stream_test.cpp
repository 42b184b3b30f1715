#include <doctest/doctest.h>

#include "terminal/sealed_stream.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

TEST_CASE("sealed stream: frames split at every byte come out whole and in order") {
  Bytes stream;
  Bytes first(300, std::byte{1}), second(5, std::byte{2});
  append_stream_frame(stream, first);
  append_stream_frame(stream, second);
  SealedStreamReader reader;
  std::vector<Bytes> seen;
  for (std::byte b : stream) {
    reader.append(ByteView(&b, 1));
    while (true) {
      auto next = reader.next();
      REQUIRE(next.has_value());
      if (!next->has_value()) break;
      seen.emplace_back((*next)->begin(), (*next)->end());
    }
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == first);
  CHECK(seen[1] == second);
  CHECK(reader.buffered() == 0);
}

TEST_CASE("sealed stream: a length above the limit or zero fails the stream for good") {
  for (uint16_t length : {uint16_t{0}, static_cast<uint16_t>(max_sealed_packet + 1)}) {
    SealedStreamReader reader;
    std::byte header[2];
    store_be16(header, length);
    reader.append(header);
    auto next = reader.next();
    CHECK_FALSE(next.has_value());
    Bytes good;
    append_stream_frame(good, Bytes(4, std::byte{7}));
    reader.append(good);
    CHECK_FALSE(reader.next().has_value());
  }
}

TEST_CASE("sealed stream: a truncated frame needs more, not an error") {
  Bytes stream;
  append_stream_frame(stream, Bytes(100, std::byte{9}));
  SealedStreamReader reader;
  reader.append(ByteView(stream.data(), stream.size() - 1));
  auto next = reader.next();
  REQUIRE(next.has_value());
  CHECK_FALSE(next->has_value());
}
