// NodeCore::reload_settings: what a SIGHUP changes in the core (docs/operator.md,
// "Reload"). Most settings are read where they are used, so a new value holds
// from the next message on; a few are built into objects at start (presence
// timeouts, the dummy password hash, the upload table) and wait for a restart.
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {

std::vector<std::string> NodeCore::reload_settings(NodeSettings next) {
  std::vector<std::string> need_restart;
  auto keep = [&](auto& next_value, const auto& current_value, const char* key) {
    if (!(next_value == current_value)) need_restart.emplace_back(key);
    next_value = current_value;
  };
  keep(next.keepalive_interval_s, settings_.keepalive_interval_s, "presence.keepalive_interval");
  keep(next.keepalive_misses, settings_.keepalive_misses, "presence.keepalive_misses");
  keep(next.password_hashing.log2_n, settings_.password_hashing.log2_n, "passwords.scrypt_log2_n");
  keep(next.password_hashing.r, settings_.password_hashing.r, "passwords.scrypt_r");
  keep(next.password_hashing.p, settings_.password_hashing.p, "passwords.scrypt_p");
  keep(next.voicemail_upload_idle_s, settings_.voicemail_upload_idle_s, "voicemail.upload_idle_timeout");
  keep(next.voicemail_upload_max_s, settings_.voicemail_upload_max_s, "voicemail.upload_max_seconds");
  // The daemon fitted max_links to the descriptor limit at start.
  keep(next.max_links, settings_.max_links, "limits.max_links");
  next.random = settings_.random;
  // The card issuer keys and the issuer's update come from the deployment's
  // files (the daemon's readers), not from node.toml: a reload keeps them.
  // [cards.areas] is node.toml's and applies from the next card_area.
  next.card_issuers = settings_.card_issuers;
  next.reload_card_issuers = settings_.reload_card_issuers;
  next.read_card_update = settings_.read_card_update;
  next.read_card_key_rollovers = settings_.read_card_key_rollovers;
  next.resolve_relay_names = settings_.resolve_relay_names;  // the daemon's resolver stays

  limiter_.set_policy(next.login_limits);
  if (next.directory_scan_burst != settings_.directory_scan_burst ||
      next.directory_scan_interval_ms != settings_.directory_scan_interval_ms)
    scan_limiter_ = DirectoryScanLimiter(next.directory_scan_burst, next.directory_scan_interval_ms);
  bool account_checks_were_off = settings_.account_check_interval_ms == 0;
  settings_ = std::move(next);
  if (account_checks_were_off && settings_.account_check_interval_ms != 0)
    deadlines_.schedule(0, DeadlineKind::account_check);
  return need_restart;
}

}  // namespace tsunagu::rendezvous
