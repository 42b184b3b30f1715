#include "allocation/table_error.hpp"

namespace tsunagu::alloc {

std::string_view to_string(TableErrc code) {
  switch (code) {
    case TableErrc::storage: return "storage error";
    case TableErrc::invalid_argument: return "invalid argument";
    case TableErrc::corrupted_record: return "corrupted record";
    case TableErrc::not_found: return "not found";
  }
  return "table error";
}

}  // namespace tsunagu::alloc
