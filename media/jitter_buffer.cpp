#include "media/jitter_buffer.hpp"

#include <speex/speex_jitter.h>

#include <algorithm>
#include <vector>

#include "media/audio_frame.hpp"
#include "media/rtp.hpp"

namespace tsunagu::media {

namespace {

constexpr uint32_t frame_span = static_cast<uint32_t>(frame_samples);
// speexdsp holds at most 200 packets; we hold far fewer (max_delay_ms bounds us).
constexpr size_t max_held = 100;

// Timestamps wrap at 2^32: compare by the signed difference (RFC 3550 A.1 style).
bool before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

void FrameJitterBuffer::Free::operator()(JitterBuffer_* jb) const { jitter_buffer_destroy(jb); }

Expected<FrameJitterBuffer, std::string> FrameJitterBuffer::create(uint32_t max_delay_ms) {
  std::unique_ptr<JitterBuffer_, Free> jb(jitter_buffer_init(static_cast<int>(frame_span)));
  if (!jb) return Unexpected(std::string("jitter_buffer_init failed"));
  // Conceal in whole frames so every missing span is one Opus PLC or FEC frame.
  spx_int32_t concealment = static_cast<spx_int32_t>(frame_span);
  if (jitter_buffer_ctl(jb.get(), JITTER_BUFFER_SET_CONCEALMENT_SIZE, &concealment) != 0)
    return Unexpected(std::string("jitter_buffer_ctl(SET_CONCEALMENT_SIZE) failed"));
  // One frame of margin above what speexdsp's arrival statistics ask for: when
  // a packet is missing the next one is then usually here, so FEC can rebuild it.
  spx_int32_t margin = static_cast<spx_int32_t>(frame_span);
  if (jitter_buffer_ctl(jb.get(), JITTER_BUFFER_SET_MARGIN, &margin) != 0)
    return Unexpected(std::string("jitter_buffer_ctl(SET_MARGIN) failed"));
  if (max_delay_ms < 20 || max_delay_ms > 600) return Unexpected(std::string("max jitter must be 20-600 ms"));
  return FrameJitterBuffer(std::move(jb), max_delay_ms);
}

FrameJitterBuffer::PutResult FrameJitterBuffer::put(uint32_t timestamp, uint16_t sequence, ByteView payload,
                                                    uint32_t tag) {
  if (!started_) grid_ = timestamp;
  const uint32_t max_delay = max_delay_ms_ * (sample_rate / 1000);
  if ((timestamp - grid_) % frame_span != 0) return PutResult::off_grid;
  if (!fits(timestamp)) return PutResult::early;
  if (held_.contains(timestamp)) return PutResult::duplicate;
  // Already played (as missing): speexdsp still hears of it, since late
  // arrivals are what make it deepen the buffer, but will never return it;
  // unless it is later than the deepest we allow, which its 16-bit timings
  // could not hold.
  bool late = pointer_valid_ && !before(pointer_, timestamp + frame_span);
  if (late && before(timestamp + frame_span + max_delay, pointer_)) return PutResult::late;
  if (!late && held_.size() >= max_held) held_.erase(held_.begin());  // bounded even against a hostile peer

  std::vector<char> data(payload.size() + 1);  // speexdsp treats a zero-length packet as an empty slot
  std::copy(payload.begin(), payload.end(), reinterpret_cast<std::byte*>(data.data()));
  JitterBufferPacket packet{};
  packet.data = data.data();
  packet.len = static_cast<spx_uint32_t>(data.size());
  packet.timestamp = timestamp;
  packet.span = frame_span;
  packet.sequence = sequence;
  packet.user_data = tag;
  jitter_buffer_put(jb_.get(), &packet);
  started_ = true;
  if (late) return PutResult::late;
  held_[timestamp] = Held{Bytes(payload.begin(), payload.end()), tag};
  return PutResult::stored;
}

FrameJitterBuffer::Frame FrameJitterBuffer::take_one() {
  Frame out;
  if (!started_) return out;
  std::vector<char> data(max_packet_size + 1);
  JitterBufferPacket packet{};
  packet.data = data.data();
  packet.len = static_cast<spx_uint32_t>(data.size());
  spx_int32_t offset = 0;
  int rc = jitter_buffer_get(jb_.get(), &packet, static_cast<spx_int32_t>(frame_span), &offset);
  jitter_buffer_tick(jb_.get());
  uint32_t now_pointer = static_cast<uint32_t>(jitter_buffer_get_pointer_timestamp(jb_.get()));
  if (rc == JITTER_BUFFER_MISSING && !pointer_valid_ && held_.empty()) {
    return out;  // never synced (or everything expired): still nothing to play
  }
  pointer_valid_ = true;
  out.timestamp = packet.timestamp;
  if (rc == JITTER_BUFFER_OK) {
    out.status = Status::frame;
    out.tag = packet.user_data;
    // Our copy has the exact bytes; speexdsp's had one byte of filler.
    if (auto it = held_.find(packet.timestamp); it != held_.end()) {
      out.payload = std::move(it->second.payload);
      held_.erase(it);
    } else if (packet.len > 0) {
      auto* begin = reinterpret_cast<const std::byte*>(packet.data);
      out.payload.assign(begin, begin + packet.len - 1);
    }
  } else {
    out.status = rc == JITTER_BUFFER_INSERTION ? Status::insertion : Status::missing;
    if (auto it = held_.find(packet.timestamp + frame_span); it != held_.end()) {
      out.next_payload = it->second.payload;
      out.next_tag = it->second.tag;
    }
  }
  pointer_ = now_pointer;
  forget_played();
  return out;
}

FrameJitterBuffer::Frame FrameJitterBuffer::get() {
  uint32_t skipped = 0;
  // Deeper than allowed (a burst after a stall): drop the oldest frames, at
  // most a few per call so a stall cannot make one call slow.
  while (pointer_valid_ && delay_ms() > max_delay_ms_ && skipped < 5) {
    take_one();
    ++skipped;
  }
  Frame out = take_one();
  out.skipped = skipped;
  return out;
}

bool FrameJitterBuffer::fits(uint32_t timestamp) const {
  if (!started_) return true;
  if ((timestamp - grid_) % frame_span != 0) return false;
  return !pointer_valid_ || before(timestamp, pointer_ + max_delay_ms_ * (sample_rate / 1000) + frame_span);
}

bool FrameJitterBuffer::admit(uint32_t timestamp) {
  if (fits(timestamp)) {
    unplaceable_run_ = 0;
    return true;
  }
  if (++unplaceable_run_ < 5) return false;
  start_over();
  return true;
}

void FrameJitterBuffer::start_over() {
  jitter_buffer_reset(jb_.get());
  held_.clear();
  started_ = pointer_valid_ = false;
  unplaceable_run_ = 0;
}

void FrameJitterBuffer::forget_played() {
  for (auto it = held_.begin(); it != held_.end();) {
    if (!before(pointer_, it->first + frame_span)) it = held_.erase(it);
    else ++it;
  }
}

uint32_t FrameJitterBuffer::delay_ms() const {
  if (held_.empty() || !pointer_valid_) return 0;
  uint32_t newest = held_.begin()->first;
  for (const auto& [timestamp, held] : held_) {
    if (before(newest, timestamp)) newest = timestamp;
  }
  uint32_t end = newest + frame_span;
  if (!before(pointer_, end)) return 0;
  return (end - pointer_) / (sample_rate / 1000);
}

}  // namespace tsunagu::media
