// speexdsp's MDF echo canceller followed by its preprocessor, which uses the
// canceller's state to suppress the echo the adaptive filter leaves behind.
#include "audio/echo_canceller.hpp"

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include <algorithm>
#include <array>

#include "audio/audio_file.hpp"

namespace tsunagu::audio {

namespace {

// The preprocessor delays its output by one of its frames (its overlap-add
// window is two frames), and its echo state must use the same frame, so both
// run on 10 ms halves of each 20 ms frame: 10 ms added to mouth-to-ear
// instead of 20, with the same ERLE (measured in the unit test).
constexpr size_t step_samples = frame_samples / 2;

class SpeexEchoCanceller final : public EchoCanceller {
 public:
  explicit SpeexEchoCanceller(unsigned tail_ms) {
    int tail_samples = static_cast<int>(std::clamp(tail_ms, 20u, 1000u)) * (rate / 1000);
    echo_ = speex_echo_state_init(static_cast<int>(step_samples), tail_samples);
    int sampling_rate = rate;
    speex_echo_ctl(echo_, SPEEX_ECHO_SET_SAMPLING_RATE, &sampling_rate);
    preprocess_ = speex_preprocess_state_init(static_cast<int>(step_samples), rate);
    speex_preprocess_ctl(preprocess_, SPEEX_PREPROCESS_SET_ECHO_STATE, echo_);
    far_.fill(0);
  }
  ~SpeexEchoCanceller() override {
    speex_preprocess_state_destroy(preprocess_);
    speex_echo_state_destroy(echo_);
  }
  SpeexEchoCanceller(const SpeexEchoCanceller&) = delete;
  SpeexEchoCanceller& operator=(const SpeexEchoCanceller&) = delete;

  // The far frame is kept and paired with the next captured frame: the
  // synchronous call keeps the alignment exact, and the device latency
  // between playing and hearing is well inside the filter's tail.
  void played(std::span<const int16_t, 960> far) override { std::copy(far.begin(), far.end(), far_.begin()); }

  void captured(std::span<const int16_t, 960> near, std::span<int16_t, 960> out) override {
    for (size_t offset = 0; offset < frame_samples; offset += step_samples) {
      speex_echo_cancellation(echo_, near.data() + offset, far_.data() + offset, out.data() + offset);
      speex_preprocess_run(preprocess_, out.data() + offset);
    }
    far_.fill(0);  // nothing played in the next period unless played() says so
  }

 private:
  SpeexEchoState* echo_;
  SpeexPreprocessState* preprocess_;
  std::array<int16_t, frame_samples> far_;
};

}  // namespace

std::unique_ptr<EchoCanceller> EchoCanceller::create(unsigned tail_ms) {
  return std::make_unique<SpeexEchoCanceller>(tail_ms);
}

}  // namespace tsunagu::audio
