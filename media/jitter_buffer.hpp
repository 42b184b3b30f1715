// speexdsp's adaptive jitter buffer behind a small adapter, in 48 kHz samples
// with 20 ms frames. There is no clock inside: speexdsp measures time by its
// playout pointer, which moves one frame per get(), so the order in which the
// caller (driven by its own `now`) calls put() as packets arrive and get() once
// per 20 ms of playout is the whole timing model.
//
// FEC needs to know whether the packet after a missing one is already here,
// and speexdsp cannot be asked without taking the packet out. So the adapter
// keeps its own copy of every payload it holds, by timestamp (bounded like the
// buffer itself); a missing frame comes back with the next frame's payload if
// that has arrived. The copy also gives the buffer's depth in ms.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/bytes.hpp"
#include "base/expected.hpp"

struct JitterBuffer_;

namespace tsunagu::media {

class FrameJitterBuffer {
 public:
  // max_delay_ms (20-600): the deepest the buffer may get; beyond it the oldest
  // frames are skipped. speexdsp keeps its arrival timings in 16 bits of
  // samples (680 ms), which bounds it.
  static Expected<FrameJitterBuffer, std::string> create(uint32_t max_delay_ms);

  enum class PutResult {
    stored,
    late,
    duplicate,
    // Not a whole number of frames from the first packet's timestamp: every
    // packet we accept is one 20 ms frame, so a sender's timestamps stay on
    // that grid. (speexdsp would return such a packet overlapping the frame
    // before it and print a warning per frame: a peer must not fill our log.)
    off_grid,
    // More than the maximum delay ahead of what is playing: a sender cannot
    // be that far ahead, so one such packet is noise (a forged far-future
    // timestamp must not make us skip audio to reach it).
    early,
  };
  // Whether a frame at `timestamp` would be placed now: on the grid and not early.
  bool fits(uint32_t timestamp) const;
  // fits(), but counting the misfits: five in a row mean the sender's
  // timeline really jumped (or our playout stalled), and the buffer starts
  // over from the fifth, which then fits. Call it before put() for each new packet.
  bool admit(uint32_t timestamp);
  // `tag` travels with the payload (the caller marks what kind of frame it is).
  PutResult put(uint32_t timestamp, uint16_t sequence, ByteView payload, uint32_t tag);

  enum class Status {
    not_started,  // nothing received yet: play silence
    frame,        // `payload` is this frame's
    missing,      // lost or late: `next_payload` holds the next frame's when it is here
    insertion,    // the buffer grows its delay by a frame: conceal one
  };
  struct Frame {
    Status status = Status::not_started;
    uint32_t timestamp = 0;
    Bytes payload;
    uint32_t tag = 0;
    std::optional<Bytes> next_payload;
    uint32_t next_tag = 0;
    uint32_t skipped = 0;  // frames dropped to stay within max_delay_ms
  };
  // One 20 ms frame of playout (also advances the buffer's clock).
  Frame get();

  uint32_t delay_ms() const;  // newest held frame's end minus the playout pointer
  size_t held() const { return held_.size(); }

 private:
  struct Free {
    void operator()(JitterBuffer_* jb) const;
  };
  struct Held {
    Bytes payload;
    uint32_t tag;
  };
  FrameJitterBuffer(std::unique_ptr<JitterBuffer_, Free> jb, uint32_t max_delay_ms)
      : jb_(std::move(jb)), max_delay_ms_(max_delay_ms) {}
  Frame take_one();
  void forget_played();
  void start_over();

  std::unique_ptr<JitterBuffer_, Free> jb_;
  uint32_t max_delay_ms_;
  bool started_ = false;   // a packet has been put
  uint32_t grid_ = 0;      // the first packet's timestamp: all others are whole frames from it
  uint32_t unplaceable_run_ = 0;  // off-grid or early packets in a row
  bool pointer_valid_ = false;  // speexdsp has synced its pointer on a packet
  uint32_t pointer_ = 0;   // the next timestamp to play
  std::map<uint32_t, Held> held_;  // by timestamp; ordered with wrap-around handled in forget_played
};

}  // namespace tsunagu::media
