// Who may hand lease events to the agent: root, the users named in
// hook.allowed_users, and members of hook.allowed_groups (primary or
// supplementary). Checked against SO_PEERCRED on the hook socket and against
// the owner of each spool file. Names are resolved once, at start-up.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

namespace tsunagu::lanagent {

class HookAccess {
 public:
  HookAccess() = default;
  HookAccess(std::set<uid_t> uids, std::set<gid_t> gids) : uids_(std::move(uids)), gids_(std::move(gids)) {}
  // Names that do not exist on this host are skipped and reported in `missing`.
  static HookAccess resolve(const std::vector<std::string>& users, const std::vector<std::string>& groups,
                            std::vector<std::string>& missing);

  bool allows(uid_t uid, gid_t gid) const { return uid == 0 || uids_.count(uid) != 0 || gids_.count(gid) != 0; }

 private:
  std::set<uid_t> uids_;
  std::set<gid_t> gids_;
};

}  // namespace tsunagu::lanagent
