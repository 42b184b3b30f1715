// ops/metrics_status.cpp: `status` prints one line per metric family.
#include <doctest/doctest.h>

#include "ops/metrics_status.hpp"

using namespace tsunagu::ops;

TEST_CASE("status: one line per family, labels and values side by side, buckets left out") {
  std::string text =
      "# HELP tsunagu_node_links Open links.\n"
      "# TYPE tsunagu_node_links gauge\n"
      "tsunagu_node_links{kind=\"terminal\"} 4\n"
      "tsunagu_node_links{kind=\"agent\"} 1\n"
      "tsunagu_node_users_online 3\n"
      "tsunagu_node_commit_duration_seconds_bucket{le=\"0.001\"} 7\n"
      "tsunagu_node_commit_duration_seconds_sum 0.25\n"
      "tsunagu_node_commit_duration_seconds_count 9\n"
      "tsunagu_node_lookups_total{route=\"direct\",result=\"found\"} 12\n";
  CHECK(summarise_metrics(text) ==
        "tsunagu_node_links: kind=terminal 4, kind=agent 1\n"
        "tsunagu_node_users_online: 3\n"
        "tsunagu_node_commit_duration_seconds_sum: 0.25\n"
        "tsunagu_node_commit_duration_seconds_count: 9\n"
        "tsunagu_node_lookups_total: route=direct,result=found 12\n");
  CHECK(summarise_metrics("").empty());
}
