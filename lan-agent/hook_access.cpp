#include "lan-agent/hook_access.hpp"

#include <grp.h>
#include <pwd.h>

namespace tsunagu::lanagent {

HookAccess HookAccess::resolve(const std::vector<std::string>& users, const std::vector<std::string>& groups,
                               std::vector<std::string>& missing) {
  std::set<uid_t> uids;
  std::set<gid_t> gids;
  for (const auto& name : users) {
    if (const passwd* pw = getpwnam(name.c_str())) uids.insert(pw->pw_uid);
    else missing.push_back("user " + name);
  }
  for (const auto& name : groups) {
    const group* gr = getgrnam(name.c_str());
    if (gr == nullptr) {
      missing.push_back("group " + name);
      continue;
    }
    gids.insert(gr->gr_gid);
    std::vector<std::string> members;
    for (char** m = gr->gr_mem; m != nullptr && *m != nullptr; ++m) members.emplace_back(*m);
    for (const auto& member : members)
      if (const passwd* pw = getpwnam(member.c_str())) uids.insert(pw->pw_uid);
  }
  return HookAccess(std::move(uids), std::move(gids));
}

}  // namespace tsunagu::lanagent
