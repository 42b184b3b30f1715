#include "audio/resampler.hpp"

#include <speex/speex_resampler.h>

#include <algorithm>

namespace tsunagu::audio {

namespace {
constexpr int min_rate = 1000, max_rate = 384000;
}

Expected<std::unique_ptr<Resampler>, std::string> Resampler::create(int in_rate, int out_rate, int quality) {
  if (in_rate < min_rate || in_rate > max_rate || out_rate < min_rate || out_rate > max_rate)
    return Unexpected(std::string("sample rate out of range (1000..384000 Hz): ") + std::to_string(in_rate) + " -> " +
                      std::to_string(out_rate));
  quality = std::clamp(quality, SPEEX_RESAMPLER_QUALITY_MIN, SPEEX_RESAMPLER_QUALITY_MAX);
  SpeexResamplerState* state = nullptr;
  if (in_rate != out_rate) {
    int err = 0;
    state = speex_resampler_init(1, static_cast<spx_uint32_t>(in_rate), static_cast<spx_uint32_t>(out_rate), quality,
                                 &err);
    if (state == nullptr) return Unexpected(std::string("resampler: ") + speex_resampler_strerror(err));
    speex_resampler_skip_zeros(state);
  }
  return std::unique_ptr<Resampler>(new Resampler(state, in_rate, out_rate));
}

Resampler::Resampler(SpeexResamplerState_* state, int in_rate, int out_rate)
    : state_(state), in_rate_(in_rate), out_rate_(out_rate) {}

Resampler::~Resampler() {
  if (state_ != nullptr) speex_resampler_destroy(state_);
}

void Resampler::process(std::span<const int16_t> in, std::vector<int16_t>& out) {
  consumed_ += in.size();
  if (state_ == nullptr) {
    out.insert(out.end(), in.begin(), in.end());
    produced_ += in.size();
    return;
  }
  // speexdsp may not take all the input in one call when the output room is
  // short, so loop; each round either consumes input or the room was too small.
  size_t offset = 0;
  for (int round = 0; offset < in.size() && round < 1000; ++round) {
    spx_uint32_t in_len = static_cast<spx_uint32_t>(in.size() - offset);
    spx_uint32_t room = static_cast<spx_uint32_t>(
        static_cast<uint64_t>(in_len) * static_cast<uint64_t>(out_rate_) / static_cast<uint64_t>(in_rate_) + 64);
    size_t start = out.size();
    out.resize(start + room);
    speex_resampler_process_int(state_, 0, in.data() + offset, &in_len, out.data() + start, &room);
    out.resize(start + room);
    produced_ += room;
    offset += in_len;
  }
}

void Resampler::flush(std::vector<int16_t>& out) {
  uint64_t expected = consumed_ * static_cast<uint64_t>(out_rate_) / static_cast<uint64_t>(in_rate_);
  if (state_ == nullptr || produced_ >= expected) return;
  std::vector<int16_t> silence(static_cast<size_t>(speex_resampler_get_input_latency(state_)) * 2 + 16, 0);
  std::vector<int16_t> tail;
  uint64_t saved_consumed = consumed_;
  uint64_t before = produced_;
  process(silence, tail);
  consumed_ = saved_consumed;
  size_t wanted = static_cast<size_t>(std::min<uint64_t>(expected - before, tail.size()));
  out.insert(out.end(), tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(wanted));
  produced_ = before + wanted;
}

void downmix(std::span<const int16_t> interleaved, int channels, std::vector<int16_t>& mono) {
  if (channels <= 1) {
    mono.insert(mono.end(), interleaved.begin(), interleaved.end());
    return;
  }
  size_t step = static_cast<size_t>(channels);
  for (size_t i = 0; i + step <= interleaved.size(); i += step) {
    int32_t sum = 0;
    for (size_t c = 0; c < step; ++c) sum += interleaved[i + c];
    mono.push_back(static_cast<int16_t>(sum / channels));
  }
}

}  // namespace tsunagu::audio
