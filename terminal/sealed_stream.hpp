// The byte-stream form of the data plane: each sealed packet travels as a
// 2-byte big-endian length then the packet. Pure; bounded like every reader
// of network input. Plaintext inside a packet starts with a DataFrameType.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::terminal {

enum class DataFrameType : uint8_t {
  data = 1,          // stream bytes (pipe, file content)
  end = 2,           // the sender has no more stream bytes
  file_header = 3,   // u64 size, then the file name (UTF-8, <= 255 bytes)
  file_result = 4,   // u8 1 = stored and SHA-256 matched, then the 32-byte SHA-256 the receiver computed
  echo_request = 5,  // u32 sequence, u64 sender's clock in ns (datagram mode)
  echo_reply = 6,    // the request's payload, returned
  end_received = 7,  // the receiver has written out everything before the sender's end
  media = 8,         // one RTP or RTCP packet of a voice call (datagram mode; media/voice_session.hpp)
  hold = 9,          // u8 1 = the sender holds the call (no media either way), 0 = resumed; repeated (datagrams)
};

inline constexpr size_t max_stream_chunk = 16 * 1024;        // plaintext bytes per packet
inline constexpr size_t max_sealed_packet = max_stream_chunk + 64;  // plus header, type and tag

void append_stream_frame(Bytes& out, ByteView sealed_packet);

class SealedStreamReader {
 public:
  void append(ByteView bytes);
  // The next whole sealed packet (valid until the next call), nullopt when
  // more bytes are needed, or an error when a length exceeds the limit.
  Expected<std::optional<ByteView>, std::string_view> next();
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  Bytes buffer_;
  size_t start_ = 0;
  bool failed_ = false;
};

}  // namespace tsunagu::terminal
