#include "terminal/call_path_report.hpp"

#include "proto/signalling.hpp"
#include "security/random.hpp"

namespace tsunagu::terminal {

Bytes path_report_message(const call::ReportPath& report) {
  proto::TransactionId id;
  security::random_bytes(id.bytes);
  proto::MessageBuilder b(proto::MessageClass::indication, proto::method::call_path, id);
  b.add_u32(proto::attr::protocol_version, proto::protocol_version);
  b.add_string(proto::attr::call_id, report.call_id);
  b.add_string(proto::attr::ice_path, report.path);
  return b.finish();
}

void send_path_report(NodeClient& node, const call::ReportPath& report) { node.send_message(path_report_message(report)); }

}  // namespace tsunagu::terminal
