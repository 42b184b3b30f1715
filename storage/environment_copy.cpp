#include "storage/environment_copy.hpp"

#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>

namespace tsunagu::storage {

Expected<void, StoreError> copy_environment(const std::string& from_directory, const std::string& to_directory,
                                            uint64_t map_size) {
  struct stat st {};
  if (stat((to_directory + "/data.mdb").c_str(), &st) == 0)
    return Unexpected(StoreError{StoreErrc::other, EEXIST, to_directory + "/data.mdb exists already"});
  MDB_env* env = nullptr;
  if (int rc = mdb_env_create(&env); rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_create"));
  // The daemon's own map size and table count, so opening never shrinks or refuses it.
  int rc = mdb_env_set_mapsize(env, static_cast<size_t>(map_size));
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 16);
  if (rc == 0) rc = mdb_env_open(env, from_directory.c_str(), MDB_RDONLY, 0600);
  if (rc != 0) {
    mdb_env_close(env);
    return Unexpected(error_from_mdb(rc, "opening " + from_directory));
  }
  rc = mdb_env_copy2(env, to_directory.c_str(), MDB_CP_COMPACT);
  mdb_env_close(env);
  if (rc != 0) return Unexpected(error_from_mdb(rc, "copying " + from_directory + " to " + to_directory));
  return {};
}

}  // namespace tsunagu::storage
