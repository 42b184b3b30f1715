#include "web/prometheus.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tsunagu::web;

TEST_CASE("a counter family gets HELP, TYPE and the _total suffix once") {
  MetricsWriter w;
  w.counter("tsunagu_test_requests", "Requests handled.");
  w.sample(uint64_t{7});
  w.counter("tsunagu_test_bytes_total", "Bytes.");
  w.sample(uint64_t{0});
  CHECK(w.text() ==
        "# HELP tsunagu_test_requests_total Requests handled.\n"
        "# TYPE tsunagu_test_requests_total counter\n"
        "tsunagu_test_requests_total 7\n"
        "# HELP tsunagu_test_bytes_total Bytes.\n"
        "# TYPE tsunagu_test_bytes_total counter\n"
        "tsunagu_test_bytes_total 0\n");
}

TEST_CASE("label values escape backslash, quote and newline; HELP escapes backslash and newline") {
  MetricsWriter w;
  w.gauge("tsunagu_test_links", "Links \\ open\nnow \"here\".");
  w.sample(uint64_t{3}, {{"kind", "a\\b\"c\nd"}, {"side", "lan"}});
  CHECK(w.text() ==
        "# HELP tsunagu_test_links Links \\\\ open\\nnow \"here\".\n"
        "# TYPE tsunagu_test_links gauge\n"
        "tsunagu_test_links{kind=\"a\\\\b\\\"c\\nd\",side=\"lan\"} 3\n");
}

TEST_CASE("values: integers as digits, fractions round-trip, infinities and NaN by name") {
  CHECK(format_metric_value(0.25) == "0.25");
  CHECK(format_metric_value(1.0) == "1");
  CHECK(format_metric_value(0.0001) == "0.0001");
  CHECK(format_metric_value(1.0 / 0.0) == "+Inf");
  CHECK(format_metric_value(-1.0 / 0.0) == "-Inf");
  CHECK(format_metric_value(0.0 / 0.0) == "NaN");
}

TEST_CASE("a histogram's buckets are cumulative, end with +Inf, and carry _sum and _count in seconds") {
  LatencyHistogram h;
  h.record_ns(50'000);         // 50 us: the first bucket
  h.record_ns(100'000);        // exactly 100 us: still the first (le is inclusive)
  h.record_ns(3'000'000);      // 3 ms: le 0.005
  h.record_ns(4'000'000'000);  // 4 s: above every bound
  CHECK(h.count() == 4);
  CHECK(h.counts()[0] == 2);
  CHECK(h.counts().back() == 1);
  MetricsWriter w;
  w.histogram("tsunagu_test_commit_duration_seconds", "Commit time.");
  w.sample(h);
  const std::string& t = w.text();
  CHECK(t.find("# TYPE tsunagu_test_commit_duration_seconds histogram\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_bucket{le=\"0.0001\"} 2\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_bucket{le=\"0.0025\"} 2\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_bucket{le=\"0.005\"} 3\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_bucket{le=\"2.5\"} 3\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_sum 4.00315\n") != std::string::npos);
  CHECK(t.find("tsunagu_test_commit_duration_seconds_count 4\n") != std::string::npos);
}

TEST_CASE("an empty histogram still writes every bucket at zero") {
  MetricsWriter w;
  w.histogram("tsunagu_test_empty_seconds", "Nothing yet.");
  w.sample(LatencyHistogram{}, {{"kind", "x"}});
  CHECK(w.text().find("tsunagu_test_empty_seconds_bucket{kind=\"x\",le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(w.text().find("tsunagu_test_empty_seconds_sum{kind=\"x\"} 0\n") != std::string::npos);
}
