#include "web/prometheus.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstdio>

namespace tsunagu::web {
namespace {

bool valid_name(std::string_view name, bool label) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return !(label && name.starts_with("__"));
}

[[noreturn]] void misuse(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "MetricsWriter: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

// HELP text: backslash and newline escaped (quotes stay as they are).
std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

}  // namespace

void LatencyHistogram::record_ns(uint64_t nanoseconds) {
  double seconds = static_cast<double>(nanoseconds) / 1e9;
  size_t i = 0;
  while (i < kBoundsSeconds.size() && seconds > kBoundsSeconds[i]) ++i;
  ++counts_[i];
  ++count_;
  sum_ns_ += nanoseconds;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  // Plain decimals ("0.0001", not "1e-04") in the range metrics live in.
  double magnitude = std::fabs(value);
  auto format = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15) ? std::chars_format::fixed
                                                                          : std::chars_format::general;
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, format);
  if (ec != std::errc()) return "NaN";
  return std::string(buffer, end);
}

void MetricsWriter::begin(Kind kind, std::string name, std::string_view help) {
  if (!valid_name(name, false)) misuse("invalid metric name", name);
  if (!written_.insert(name).second) misuse("family written twice", name);
  static constexpr std::string_view kTypes[] = {"untyped", "counter", "gauge", "histogram"};
  text_ += "# HELP " + name + ' ' + escape_help(help) + '\n';
  text_ += "# TYPE " + name + ' ' + std::string(kTypes[static_cast<int>(kind)]) + '\n';
  family_ = std::move(name);
  kind_ = kind;
}

void MetricsWriter::counter(std::string_view name, std::string_view help) {
  std::string full(name);
  if (!full.ends_with("_total")) full += "_total";
  begin(Kind::counter, std::move(full), help);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help) { begin(Kind::gauge, std::string(name), help); }

void MetricsWriter::histogram(std::string_view name, std::string_view help) {
  begin(Kind::histogram, std::string(name), help);
}

void MetricsWriter::write_sample(std::string_view suffix, const MetricLabels& labels, std::string_view extra_name,
                                 std::string_view extra_value, const std::string& value) {
  text_ += family_;
  text_ += suffix;
  if (!labels.empty() || !extra_name.empty()) {
    text_ += '{';
    bool first = true;
    auto add = [&](std::string_view label, std::string_view label_value) {
      if (!valid_name(label, true)) misuse("invalid label name", label);
      if (!first) text_ += ',';
      first = false;
      text_ += label;
      text_ += "=\"";
      text_ += escape_label_value(label_value);
      text_ += '"';
    };
    for (const auto& [label, label_value] : labels) add(label, label_value);
    if (!extra_name.empty()) add(extra_name, extra_value);
    text_ += '}';
  }
  text_ += ' ';
  text_ += value;
  text_ += '\n';
}

void MetricsWriter::sample(uint64_t value, const MetricLabels& labels) {
  if (kind_ != Kind::counter && kind_ != Kind::gauge) misuse("a value outside a counter or gauge family", family_);
  write_sample({}, labels, {}, {}, std::to_string(value));
}

void MetricsWriter::sample(double value, const MetricLabels& labels) {
  if (kind_ != Kind::counter && kind_ != Kind::gauge) misuse("a value outside a counter or gauge family", family_);
  write_sample({}, labels, {}, {}, format_metric_value(value));
}

void MetricsWriter::sample(const LatencyHistogram& histogram, const MetricLabels& labels) {
  if (kind_ != Kind::histogram) misuse("a histogram outside a histogram family", family_);
  uint64_t cumulative = 0;
  const auto& counts = histogram.counts();
  for (size_t i = 0; i < LatencyHistogram::kBoundsSeconds.size(); ++i) {
    cumulative += counts[i];
    write_sample("_bucket", labels, "le", format_metric_value(LatencyHistogram::kBoundsSeconds[i]),
                 std::to_string(cumulative));
  }
  write_sample("_bucket", labels, "le", "+Inf", std::to_string(histogram.count()));
  write_sample("_sum", labels, {}, {}, format_metric_value(histogram.sum_seconds()));
  write_sample("_count", labels, {}, {}, std::to_string(histogram.count()));
}

}  // namespace tsunagu::web
