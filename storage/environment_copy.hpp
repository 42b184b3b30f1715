// A consistent copy of a live LMDB environment (`tsunagu-rendezvous backup`),
// and putting such a copy back (`restore`): LMDB's own copy in one read
// transaction, so the daemon keeps serving and writing while it runs, and the
// copy is the state of one moment.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/expected.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::storage {

// Called now and then with the bytes written so far and the expected total
// (the total is an estimate for a compacted copy: the pages in use).
using CopyProgress = std::function<void(uint64_t done_bytes, uint64_t total_bytes)>;

// Copies the environment in `from_directory` into `to_directory` (which must
// exist and hold no data.mdb) as data.mdb, compacted (free pages left out,
// like `mdb_copy -c`), and flushed to disk before returning. The copy is
// written as data.mdb.partial-XXXXXX and linked to data.mdb only once whole,
// so an interrupted copy never leaves a data.mdb. The copy opens by itself:
// `restore_environment` puts it back.
Expected<void, StoreError> copy_environment(const std::string& from_directory, const std::string& to_directory,
                                            uint64_t map_size, const CopyProgress& progress = {});

// Whether a process has the environment in `directory` open: LMDB holds a
// lock on lock.mdb's first byte for as long as an environment is open (the
// same test LMDB itself makes at open). Answers the holder's PID, 0 if none.
Expected<int, StoreError> environment_holder(const std::string& directory);

// Puts the backup file `backup_file` (a data.mdb from copy_environment) in
// place of `to_directory`/data.mdb: refuses while a process has that
// environment open (StoreErrc::busy) or when the file is not an LMDB
// environment holding a table named `required_table`, or is shorter than its
// header says (StoreErrc::corrupted); the current data.mdb is kept as
// data.mdb.before-restore (a hard link, so data.mdb exists throughout). Holds LMDB's lock
// meanwhile, so a daemon started during the restore waits for it to end.
Expected<void, StoreError> restore_environment(const std::string& backup_file, const std::string& to_directory,
                                               const std::string& required_table, const CopyProgress& progress = {});

}  // namespace tsunagu::storage
