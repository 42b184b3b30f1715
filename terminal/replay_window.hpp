// Replay protection for the data plane: remembers which of the last 1024
// sequence numbers (counting back from the highest one accepted) were already
// accepted. Pure; no allocation.
//
// Layout (RFC 6479 style): a ring of 64-bit blocks indexed by the sequence
// number itself (block = (seq / 64) mod block_count, bit = seq mod 64), so
// moving the window forward clears whole blocks instead of shifting a bitmap.
// The ring holds one block more than the window needs, so every sequence in
// [highest - 1023, highest] has its own bit even when the window's lower end
// falls inside a block.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tsunagu::terminal {

enum class ReplayCheck : uint8_t {
  fresh,     // never accepted and inside (or ahead of) the window
  replayed,  // already accepted
  too_old,   // 1024 or more below the highest accepted: cannot tell, refuse
};

class ReplayWindow {
 public:
  static constexpr uint64_t window_size = 1024;

  // Whether `seq` may be accepted. Does not change the window.
  ReplayCheck classify(uint64_t seq) const {
    if (!any_accepted_ || seq > highest_) return ReplayCheck::fresh;
    if (highest_ - seq >= window_size) return ReplayCheck::too_old;
    return (blocks_[block_of(seq)] >> (seq % block_bits)) & 1u ? ReplayCheck::replayed : ReplayCheck::fresh;
  }
  bool check(uint64_t seq) const { return classify(seq) == ReplayCheck::fresh; }

  // Records `seq` as accepted, moving the window forward if it is the new
  // highest. Call only after the packet was authenticated. A sequence that
  // check() refuses is ignored (the window stays as it was).
  void accept(uint64_t seq) {
    if (!check(seq)) return;
    if (!any_accepted_) {
      any_accepted_ = true;
      highest_ = seq;
    } else if (seq > highest_) {
      uint64_t old_block = highest_ / block_bits;
      uint64_t new_block = seq / block_bits;
      uint64_t advance = new_block - old_block;
      if (advance >= block_count) {
        blocks_.fill(0);
      } else {
        for (uint64_t i = 1; i <= advance; ++i) blocks_[(old_block + i) % block_count] = 0;
      }
      highest_ = seq;
    }
    blocks_[block_of(seq)] |= uint64_t{1} << (seq % block_bits);
  }

  // The highest sequence accepted so far; meaningless while nothing was.
  bool any_accepted() const { return any_accepted_; }
  uint64_t highest() const { return highest_; }

 private:
  static constexpr uint64_t block_bits = 64;
  static constexpr uint64_t block_count = window_size / block_bits + 1;
  static_assert(window_size % block_bits == 0);

  static size_t block_of(uint64_t seq) { return static_cast<size_t>((seq / block_bits) % block_count); }

  std::array<uint64_t, block_count> blocks_{};
  uint64_t highest_ = 0;
  bool any_accepted_ = false;
};

}  // namespace tsunagu::terminal
