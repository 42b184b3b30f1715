// A consistent copy of a live LMDB environment (`tsunagu-rendezvous backup`):
// LMDB's own copy in one read transaction, so the daemon keeps serving and
// writing while it runs, and the copy is the state of one moment.
#pragma once

#include <string>

#include "base/expected.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::storage {

// Copies the environment in `from_directory` into `to_directory` (which must
// exist and hold no data.mdb) as data.mdb, compacted (free pages left out,
// like `mdb_copy -c`). The copy opens by itself: put it in place of the
// original's data.mdb (with the daemon stopped) to restore.
Expected<void, StoreError> copy_environment(const std::string& from_directory, const std::string& to_directory,
                                            uint64_t map_size);

}  // namespace tsunagu::storage
