// `tsunagu-rendezvous doctor`: checks a deployment directory the way the node
// would use it (docs/operator.md, "doctor"), and says what to fix.
#pragma once

#include <string>

#include "ops/doctor_report.hpp"

namespace tsunagu::rendezvous {

ops::DoctorReport run_node_doctor(const std::string& directory, ops::DoctorClock clock);

}  // namespace tsunagu::rendezvous
