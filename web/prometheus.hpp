// The Prometheus text exposition format 0.0.4, written by hand (it is a few
// lines per family): counters, gauges and histograms, each family with
// # HELP and # TYPE, label values escaped. Pure: values in, text out. The
// node's and the agent's /metrics (rendezvous/node_metrics.hpp,
// lan-agent/agent_metrics.hpp) are built with it.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsunagu::web {

// Label name and value. Values come from a fixed set the caller chooses
// (never a user ID or an address); they are escaped all the same.
using MetricLabels = std::vector<std::pair<std::string_view, std::string_view>>;

// Durations counted into fixed buckets (seconds, from 100 us to 2.5 s), for
// a histogram family. Recorded in nanoseconds (uv_hrtime's unit).
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBoundsSeconds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};
  void record_ns(uint64_t nanoseconds);
  // Samples at or below kBoundsSeconds[i] (not cumulative); the last entry
  // counts those above every bound.
  const std::array<uint64_t, kBoundsSeconds.size() + 1>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum_seconds() const { return static_cast<double>(sum_ns_) / 1e9; }

 private:
  std::array<uint64_t, kBoundsSeconds.size() + 1> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
};

class MetricsWriter {
 public:
  // Starts a family. A counter's name gets "_total" when it lacks it. Names
  // must match [a-zA-Z_:][a-zA-Z0-9_:]* and appear once; a bad or repeated
  // name is this program's bug (aborts).
  void counter(std::string_view name, std::string_view help);
  void gauge(std::string_view name, std::string_view help);
  void histogram(std::string_view name, std::string_view help);

  // A sample of the current counter or gauge family.
  void sample(uint64_t value, const MetricLabels& labels = {});
  void sample(double value, const MetricLabels& labels = {});
  // The _bucket, _sum and _count samples of the current histogram family.
  void sample(const LatencyHistogram& histogram, const MetricLabels& labels = {});

  const std::string& text() const { return text_; }
  std::string take() { return std::move(text_); }

 private:
  enum class Kind { none, counter, gauge, histogram };
  void begin(Kind kind, std::string name, std::string_view help);
  void write_sample(std::string_view suffix, const MetricLabels& labels, std::string_view extra_name,
                    std::string_view extra_value, const std::string& value);

  std::string text_;
  std::string family_;
  Kind kind_ = Kind::none;
  std::set<std::string, std::less<>> written_;
};

// "\\", "\"" and newline escaped, as a label value needs.
std::string escape_label_value(std::string_view value);
// A sample value: integers as digits, others shortest round-trip, +Inf, -Inf, NaN.
std::string format_metric_value(double value);

// The Content-Type of a /metrics answer.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace tsunagu::web
