// `tsunagu-rendezvous status`: the live figures of a running node, read from
// its /metrics over loopback HTTPS (docs/operator.md, "status").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/expected.hpp"

namespace tsunagu::rendezvous {

// GET /metrics from HOST:PORT over TLS, the server's certificate checked
// against `ca_file` (chain only: the node's names may not include the
// loopback address). The response's body; an error says what failed. The
// whole exchange is bounded by `timeout_ms` and the body by 4 MiB.
Expected<std::string, std::string> fetch_node_metrics(const std::string& host, uint16_t port, const std::string& ca_file,
                                                      int timeout_ms);

// One line per metric family of a Prometheus text exposition, its samples'
// labels and values side by side ("tsunagu_node_links: kind=agent 1, kind=terminal 4");
// histogram buckets are left out (their _sum and _count stay). Pure.
std::string summarise_metrics(std::string_view exposition);

}  // namespace tsunagu::rendezvous
