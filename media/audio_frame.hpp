// The frame every part of media/ works in: 20 ms of 48 kHz mono 16-bit PCM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tsunagu::media {

inline constexpr int sample_rate = 48000;
inline constexpr size_t frame_samples = 960;  // 20 ms, mono
inline constexpr uint64_t frame_ns = 20'000'000;
using FrameView = std::span<const int16_t, frame_samples>;
using FrameOut = std::span<int16_t, frame_samples>;

}  // namespace tsunagu::media
