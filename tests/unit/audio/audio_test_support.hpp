// Signals and measurements shared by the audio tests: sines, Goertzel power
// (a single-bin DFT, enough to tell one frequency from another), energy, and
// a temporary directory that removes itself.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <numbers>
#include <span>
#include <string>
#include <vector>

namespace tsunagu::audio::test {

inline std::vector<int16_t> sine(double frequency, int sample_rate, size_t samples, double amplitude = 10000) {
  std::vector<int16_t> out(samples);
  for (size_t i = 0; i < samples; ++i)
    out[i] = static_cast<int16_t>(
        std::lround(amplitude * std::sin(2 * std::numbers::pi * frequency * static_cast<double>(i) / sample_rate)));
  return out;
}

// Power of one frequency, normalised so a full-scale-relative comparison
// between frequencies of the same signal is meaningful.
inline double goertzel(std::span<const int16_t> samples, double frequency, int sample_rate) {
  double coefficient = 2 * std::cos(2 * std::numbers::pi * frequency / sample_rate);
  double s1 = 0, s2 = 0;
  for (int16_t x : samples) {
    double s0 = x + coefficient * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  double power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
  return power / (static_cast<double>(samples.size()) * static_cast<double>(samples.size()));
}

// The frequency among candidates with the most power.
inline double strongest(std::span<const int16_t> samples, int sample_rate, double from, double to, double step) {
  double best = from, best_power = -1;
  for (double f = from; f <= to; f += step) {
    double power = goertzel(samples, f, sample_rate);
    if (power > best_power) {
      best_power = power;
      best = f;
    }
  }
  return best;
}

inline double rms(std::span<const int16_t> samples) {
  if (samples.empty()) return 0;
  double sum = 0;
  for (int16_t x : samples) sum += static_cast<double>(x) * x;
  return std::sqrt(sum / static_cast<double>(samples.size()));
}

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-audio-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tsunagu::audio::test
