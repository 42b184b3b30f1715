// Logins by SCRAM-SHA-256 (docs/protocol.md, login_begin and login;
// docs/security.md, "Logins"). The terminal derives SaltedPassword, the slow
// part, itself and caches it; the node checks a proof with two HMACs and a
// hash, on the loop, and proves in turn that it holds the ServerKey.
//
// Round 1, login_begin: SCRAM-CLIENT-FIRST names the ID; the node answers the
// account's salt and iterations, or, for an unknown ID and for an account
// still holding a scrypt hash, a salt derived from the ID and the store's
// secret (stable, so asking twice tells nothing) with the current default
// iterations. The exchange waits on the link.
// Round 2, login with SCRAM-CLIENT-FINAL: the proof is checked against the
// StoredKey (a dummy never matches) under the same limiter, audit lines and
// answers as a password login, and the success carries SCRAM-SERVER-FINAL.
//
// A password login (USER-ID + PASSWORD) is still taken: it is how a scrypt
// account migrates (the node has the plain password during that one login
// and stores SCRAM credentials made from it) and how older terminals log in.
//
// login_resume (one round): USER-ID + RESUME-TOKEN, a token an earlier login
// of this account got (security/resume_token.hpp). One HMAC and the account's
// generation decide; a refused token is answered 401 and not charged to the
// limiter (a 256-bit MAC is not guessed), and the terminal logs in by SCRAM.
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"
#include "security/digest.hpp"
#include "security/encoding.hpp"
#include "security/resume_token.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;
namespace scram = security::scram;

constexpr size_t server_nonce_random_size = 18;
constexpr std::string_view dummy_salt_label = "tsunagu scram dummy salt\n";

TokenRefusal token_refusal_of(security::resume_token::Refusal refusal) {
  switch (refusal) {
    case security::resume_token::Refusal::malformed: return TokenRefusal::malformed;
    case security::resume_token::Refusal::forged: return TokenRefusal::forged;
    case security::resume_token::Refusal::expired: return TokenRefusal::expired;
  }
  return TokenRefusal::malformed;
}

}  // namespace

std::string_view to_string(TokenRefusal reason) {
  switch (reason) {
    case TokenRefusal::malformed: return "malformed";
    case TokenRefusal::forged: return "forged";
    case TokenRefusal::expired: return "expired";
    case TokenRefusal::revoked: return "revoked";
    case TokenRefusal::disabled: return "disabled";
  }
  return "malformed";
}

PasswordJobResult run_password_job(const PasswordJob& job) {
  PasswordJobResult result;
  result.id = job.id;
  if (job.kind == PasswordJob::Kind::hash) {
    result.hash = job.scrypt ? security::hash_password(job.password, *job.scrypt)
                             : scram::stored_credentials(job.password, job.scram_iterations);
    return result;
  }
  if (job.after_failed_proof) {
    const auto& failed = *job.after_failed_proof;
    Bytes salted = scram::salted_password(job.password, failed.salt, failed.iterations);
    result.same_as_failed_proof = scram::client_proof(salted, failed.auth_message) == failed.proof;
  }
  if (auto credentials = scram::decode_credentials(job.stored_hash)) {
    result.verified = scram::password_matches(job.password, *credentials);
    return result;
  }
  result.verified = security::verify_password(job.password, job.stored_hash);
  if (result.verified && job.scram_iterations != 0)
    result.hash = scram::stored_credentials(job.password, job.scram_iterations);
  return result;
}

scram::ServerCredentials NodeCore::dummy_credentials(const std::string& user_id) {
  std::string input(dummy_salt_label);
  input += user_id;
  Bytes salt = security::hmac_sha256(accounts_.dummy_salt_key(), as_bytes(input));
  salt.resize(scram::salt_size);
  scram::ServerCredentials credentials;
  credentials.salt = std::move(salt);
  credentials.iterations = settings_.scram_iterations;
  credentials.stored_key.resize(scram::key_size);
  credentials.server_key.resize(scram::key_size);
  fill_random(credentials.stored_key);  // no proof hashes to a random key
  fill_random(credentials.server_key);
  return credentials;
}

bool NodeCore::login_limited(LinkId link, const LinkState& state, const proto::Message& request,
                             const std::string& user_id, Now now) {
  uint32_t wait = limiter_.retry_after(user_id, source_key(state.observed), now.mono_ms);
  if (wait == 0) return false;
  ++counters_.rate_limited;
  ++counters_.logins_limited;
  audit_login("limited", user_id, state.observed);
  reply_retry_after(link, request, wait, "Too Many Attempts: try again later");
  return true;
}

std::optional<std::optional<Account>> NodeCore::find_account(LinkId link, const proto::Message& request,
                                                             const std::string& user_id) {
  auto account = accounts_.find(user_id);
  if (!account) {
    reply_storage_error(link, request, account.error());
    return std::nullopt;
  }
  return std::move(*account);
}

bool NodeCore::read_login_details(LinkId link, const proto::Message& request, PendingAuth& pending) {
  pending.role = sig::link_role::presence;
  if (const auto* role = request.find(sig::attr::link_role)) {
    auto value = proto::read_u32(*role);
    if (!value || *value > sig::link_role::query) {
      reply_error(link, request, sig::error::bad_request, "Bad Request: unknown LINK-ROLE");
      return false;
    }
    pending.role = *value;
  }
  for (const auto* reported : request.find_all(sig::attr::reported_address)) {
    auto address = proto::read_xor_address(*reported, request);
    if (!address || pending.reported.size() >= 8) {
      reply_error(link, request, sig::error::bad_request, "Bad Request: bad or too many REPORTED-ADDRESS");
      return false;
    }
    pending.reported.push_back(*address);
  }
  return true;
}

void NodeCore::handle_login_begin(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (state.login_pending) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: a login is already in progress on this link");
    return;
  }
  state.scram.reset();  // a new exchange replaces any earlier one
  const auto* first_attribute = request.find(sig::attr::scram_client_first);
  if (first_attribute == nullptr) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: SCRAM-CLIENT-FIRST is required");
    return;
  }
  auto first = scram::parse_client_first(proto::read_string(*first_attribute));
  if (!first) {
    ++counters_.bad_messages;
    reply_error(link, request, sig::error::bad_request, std::string("Bad Request: ") + std::string(first.error().detail));
    return;
  }
  const std::string& user_id = first->username;
  if (!sig::valid_user_id(user_id)) {
    reply_error(link, request, sig::error::invalid_user_id);
    return;
  }
  if (refuse_agent_id(link, request, user_id) || login_limited(link, state, request, user_id, now)) return;
  auto account = find_account(link, request, user_id);
  if (!account) return;
  ScramExchange exchange;
  exchange.user_id = user_id;
  std::optional<scram::ServerCredentials> stored;
  if (account->has_value()) stored = scram::decode_credentials((*account)->password_hash);
  exchange.account_exists = stored.has_value();
  if (stored) exchange.generation = (*account)->generation;
  exchange.credentials = stored ? std::move(*stored) : dummy_credentials(user_id);
  Bytes server_random(server_nonce_random_size);
  fill_random(server_random);
  exchange.nonce = first->nonce + security::base64_encode(server_random);
  exchange.client_first_bare = std::move(first->bare);
  exchange.server_first = scram::build_server_first(
      {exchange.nonce, exchange.credentials.salt, exchange.credentials.iterations});
  proto::MessageBuilder ok = success(request);
  ok.add_string(sig::attr::scram_server_first, exchange.server_first);
  state.scram = std::move(exchange);
  send(link, ok.finish());
}

void NodeCore::handle_scram_login(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (!state.scram) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: send login_begin first");
    return;
  }
  ScramExchange exchange = std::move(*state.scram);
  state.scram.reset();  // one proof per exchange
  auto final_message = scram::parse_client_final(proto::read_string(*request.find(sig::attr::scram_client_final)));
  if (!final_message) {
    ++counters_.bad_messages;
    reply_error(link, request, sig::error::bad_request,
                std::string("Bad Request: ") + std::string(final_message.error().detail));
    return;
  }
  if (final_message->nonce != exchange.nonce) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: the nonce is not this exchange's");
    return;
  }
  PendingAuth pending;
  pending.link = link;
  pending.transaction = request.transaction_id;
  pending.user_id = exchange.user_id;
  if (!read_login_details(link, request, pending)) return;
  if (login_limited(link, state, request, exchange.user_id, now)) return;
  std::string source = source_key(state.observed);
  // Charged as a password login is: finish_login refunds it on success.
  limiter_.record_failure(exchange.user_id, source, now.mono_ms);
  std::string auth = scram::auth_message(exchange.client_first_bare, exchange.server_first, final_message->without_proof);
  bool verified = scram::verify_client_proof(exchange.credentials.stored_key, auth, final_message->proof);
  if (!verified)
    state.failed_proof.emplace(exchange.user_id, PasswordJob::FailedProof{exchange.credentials.salt,
                                                                          exchange.credentials.iterations, auth,
                                                                          final_message->proof});
  else
    state.failed_proof.reset();
  pending.account_exists = exchange.account_exists;
  pending.generation = exchange.generation;
  if (verified && exchange.account_exists)
    pending.server_final =
        scram::build_server_final({scram::server_signature(exchange.credentials.server_key, auth), {}});
  finish_login(pending, verified, now);
}

const Bytes& NodeCore::resume_key() {
  if (resume_key_.empty()) resume_key_ = security::resume_token::derive_key(accounts_.dummy_salt_key());
  return resume_key_;
}

void NodeCore::add_resume_token(proto::MessageBuilder& ok, const std::string& user_id, uint64_t generation, Now now) {
  if (settings_.resume_token_ttl_s == 0) return;
  std::array<std::byte, security::resume_token::random_size> random;
  fill_random(random);
  ok.add(sig::attr::resume_token, security::resume_token::issue(resume_key(), user_id, generation,
                                                                now.unix_s + settings_.resume_token_ttl_s, random));
  ok.add_u32(sig::attr::resume_token_lifetime, settings_.resume_token_ttl_s);
}

void NodeCore::handle_token_login(LinkId link, LinkState& state, const proto::Message& request, Now now) {
  if (state.login_pending) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: a login is already in progress on this link");
    return;
  }
  state.scram.reset();
  const auto* id_attribute = request.find(sig::attr::user_id);
  const auto* token_attribute = request.find(sig::attr::resume_token);
  if (id_attribute == nullptr || token_attribute == nullptr) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: USER-ID and RESUME-TOKEN are required");
    return;
  }
  std::string user_id(proto::read_string(*id_attribute));
  if (!sig::valid_user_id(user_id)) {
    reply_error(link, request, sig::error::invalid_user_id);
    return;
  }
  if (refuse_agent_id(link, request, user_id) || login_limited(link, state, request, user_id, now)) return;
  PendingAuth pending;
  pending.link = link;
  pending.transaction = request.transaction_id;
  pending.user_id = user_id;
  pending.method = "token";
  if (!read_login_details(link, request, pending)) return;
  // The generation is all a token is checked against: no record decoded.
  auto generation = accounts_.generation(user_id);
  if (!generation) {
    reply_storage_error(link, request, generation.error());
    return;
  }
  std::optional<TokenRefusal> refusal;
  auto claims = security::resume_token::check(resume_key(), token_attribute->value, user_id, now.unix_s);
  if (settings_.resume_token_ttl_s == 0) refusal = TokenRefusal::disabled;
  else if (!claims) refusal = token_refusal_of(claims.error());
  // Removed, or its password changed since (either moves the generation on).
  else if (!generation->has_value() || **generation != claims->generation) refusal = TokenRefusal::revoked;
  if (refusal) {
    ++counters_.failed_logins;
    ++counters_.token_logins_refused;
    ++counters_.token_refusals[static_cast<size_t>(*refusal)];
    if (audit_->enabled()) {
      audit::AuditEvent event{"login", {}};
      event.add("result", "failed").add("user", user_id).add("source", state.observed.to_string());
      event.add("method", "token").add("reason", std::string(to_string(*refusal)));
      audit_->record(event);
    }
    reply_error(link, request, sig::error::unauthenticated, "Unauthenticated: resume token refused; log in again");
    return;
  }
  pending.account_exists = true;
  pending.generation = claims->generation;
  finish_login(pending, true, now);
}

void NodeCore::register_with_credentials(LinkId link, const proto::Message& request, const std::string& user_id,
                                         const std::string& display_name, std::string_view encoded, Now now) {
  auto credentials = scram::decode_credentials(encoded);
  if (!credentials) {
    reply_error(link, request, sig::error::bad_request, "Bad Request: SCRAM-CREDENTIALS malformed");
    return;
  }
  // A client must not store weaker credentials than the node would make.
  if (credentials->iterations < settings_.scram_iterations) {
    reply_error(link, request, sig::error::bad_request,
                "Bad Request: SCRAM-CREDENTIALS iterations below " + std::to_string(settings_.scram_iterations));
    return;
  }
  limiter_.record_registration(source_key(links_.at(link).observed), now.mono_ms);
  PendingAuth pending = PendingAuth::registration(link, request, user_id, display_name);
  pending.client_credentials = true;
  finish_register(pending, scram::encode_credentials(*credentials), now);
}

void NodeCore::migrate_password(const PendingAuth& pending, const std::string& credentials) {
  // On LMDB the read and the write share one write transaction, so no
  // admin command's change slips between them.
  if (!cluster_mode_ && write_txn() == nullptr) return note_storage_error(txn_error_);
  auto account = accounts_.find(pending.user_id);
  if (!account) return note_storage_error(account.error());
  // Changed or removed meanwhile: that change wins; the login fails its generation check.
  if (!account->has_value() || (*account)->generation != pending.generation ||
      (*account)->password_hash != pending.stored_hash)
    return;
  Account migrated = std::move(**account);
  migrated.password_hash = credentials;
  if (auto updated = accounts_.update(migrated); !updated) note_storage_error(updated.error());
}

}  // namespace tsunagu::rendezvous
