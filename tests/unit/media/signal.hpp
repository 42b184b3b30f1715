// Deterministic test signals and measures for the media tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

namespace media_test {

// A sum of three sines whose amplitudes are modulated slowly, like voiced speech.
inline int16_t test_signal(size_t n) {
  double t = static_cast<double>(n) / 48000.0;
  double envelope = 0.6 + 0.4 * std::sin(2 * std::numbers::pi * 3.0 * t);
  double v = 0.35 * std::sin(2 * std::numbers::pi * 220.0 * t) + 0.25 * std::sin(2 * std::numbers::pi * 587.0 * t) +
             0.15 * std::sin(2 * std::numbers::pi * 1310.0 * t);
  return static_cast<int16_t>(std::lround(12000.0 * envelope * v));
}

// Pearson correlation of a against b shifted by `lag` (b[i + lag] against a[i]).
inline double correlation(const std::vector<int16_t>& a, const std::vector<int16_t>& b, size_t lag, size_t from,
                          size_t count) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  size_t n = 0;
  for (size_t i = from; i < from + count && i + lag < b.size() && i < a.size(); ++i, ++n) {
    double x = a[i], y = b[i + lag];
    sa += x; sb += y; saa += x * x; sbb += y * y; sab += x * y;
  }
  if (n == 0) return 0;
  double cov = sab - sa * sb / static_cast<double>(n);
  double va = saa - sa * sa / static_cast<double>(n), vb = sbb - sb * sb / static_cast<double>(n);
  if (va <= 0 || vb <= 0) return 0;
  return cov / std::sqrt(va * vb);
}

// The best correlation over lags 0..max_lag, and that lag.
struct BestLag {
  double correlation = -2;
  size_t lag = 0;
};
inline BestLag best_lag(const std::vector<int16_t>& a, const std::vector<int16_t>& b, size_t max_lag, size_t from,
                        size_t count) {
  BestLag best;
  for (size_t lag = 0; lag <= max_lag; ++lag) {
    double c = correlation(a, b, lag, from, count);
    if (c > best.correlation) best = {c, lag};
  }
  return best;
}

// Goertzel: the power of `hz` in x[from, from + count), normalised by count^2.
inline double goertzel(const std::vector<int16_t>& x, size_t from, size_t count, double hz) {
  double w = 2 * std::numbers::pi * hz / 48000.0, coeff = 2 * std::cos(w);
  double s1 = 0, s2 = 0;
  for (size_t i = from; i < from + count && i < x.size(); ++i) {
    double s = x[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return power / (static_cast<double>(count) * static_cast<double>(count));
}

}  // namespace media_test
