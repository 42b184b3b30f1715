// Tsunagu's own STUN methods, attributes and error codes (protocol version 1).
// docs/protocol.md is the prose form of this file; keep them in step.
#pragma once

#include <cstdint>
#include <string_view>

namespace tsunagu::proto {

inline constexpr uint32_t protocol_version = 1;

// Methods live in the 0x800-0xFFF range (RFC 8489: "Designated Expert"), so
// they never collide with Binding or TURN methods.
namespace method {
inline constexpr uint16_t register_user = 0x801;  // create an account (if the node allows it)
inline constexpr uint16_t login = 0x802;          // authenticate a link, report addresses
inline constexpr uint16_t keepalive = 0x803;      // refresh presence
inline constexpr uint16_t logout = 0x804;         // clear presence
inline constexpr uint16_t lookup = 0x805;         // where is USER-ID?
inline constexpr uint16_t notice = 0x806;         // indication from the node (e.g. "logged out elsewhere")
inline constexpr uint16_t login_begin = 0x807;    // SCRAM's first round: client-first in, server-first (salt, iterations) out
// A login in one round trip: USER-ID + RESUME-TOKEN from an earlier login (0x8C0-0x8CF: resumption)
inline constexpr uint16_t login_resume = 0x8C0;
// LAN agent link (agent <-> node, TLS with the agent's client certificate).
inline constexpr uint16_t agent_hello = 0x810;        // agent -> node: claim DOMAIN / NUMBER-PREFIX routes
inline constexpr uint16_t forwarded_lookup = 0x811;   // node -> agent: where is USER-ID (asked by CALLER-ID)?
// Calls.
inline constexpr uint16_t call = 0x820;              // caller -> node: ring USER-ID with this ICE offer
inline constexpr uint16_t ring = 0x821;              // node -> callee: someone calls; answer = accept
inline constexpr uint16_t call_event = 0x822;        // indication node -> party: accepted / ended
inline constexpr uint16_t hangup = 0x823;            // party -> node: end (or cancel) CALL-ID
inline constexpr uint16_t turn_credentials = 0x824;  // terminal -> node: STUN/TURN servers and credentials
inline constexpr uint16_t call_candidate = 0x825;    // indication party -> node -> other party (trickle ICE)
// Voicemail (docs/voicemail.md) and the directory and profiles (docs/directory.md).
inline constexpr uint16_t voicemail_begin = 0x830;     // caller -> node: a message of VOICEMAIL-SIZE bytes for USER-ID
inline constexpr uint16_t voicemail_chunk = 0x831;     // caller -> node: VOICEMAIL-DATA at VOICEMAIL-OFFSET
inline constexpr uint16_t voicemail_finish = 0x832;    // caller -> node: store it (answered after the commit)
inline constexpr uint16_t voicemail_list = 0x833;      // owner -> node: what is in my mailbox
inline constexpr uint16_t voicemail_fetch = 0x834;     // owner -> node: bytes of VOICEMAIL-ID from VOICEMAIL-OFFSET
inline constexpr uint16_t voicemail_delete = 0x835;    // owner -> node: saved it, delete it (the acknowledgement)
inline constexpr uint16_t voicemail_deliver = 0x836;   // LAN agent -> LAN terminal: VOICEMAIL-DATA of a message at VOICEMAIL-OFFSET
inline constexpr uint16_t directory_search = 0x838;    // published users by name, business category or phone
inline constexpr uint16_t directory_categories = 0x839;  // the business categories in use
inline constexpr uint16_t profile_get = 0x83A;         // my own directory row
inline constexpr uint16_t profile_set = 0x83B;         // change my own directory row
// Access cards (docs/cards.md, "Calls on a card").
inline constexpr uint16_t card_units = 0x840;   // indication node -> caller: CARD-UNITS left (CALL-ID), after each debit
inline constexpr uint16_t card_status = 0x841;  // terminal -> node: CARD + CARD-PASSWORD; answered with CARD-UNITS
inline constexpr uint16_t card_area = 0x842;    // terminal -> node: which area am I in? answered with CARD-AREA
inline constexpr uint16_t card_password = 0x890;  // terminal -> node: CARD + CARD-PASSWORD + CARD-NEW-PASSWORD: the holder's password
// Operations (docs/operator.md, "Audit log").
inline constexpr uint16_t call_path = 0x860;  // indication party -> node: CALL-ID, ICE-PATH selected once connected
}  // namespace method

// Attributes live in 0xC000-0xFFFF (comprehension-optional, Designated Expert):
// a generic STUN decoder (Wireshark) shows them as unknown but intact.
namespace attr {
inline constexpr uint16_t protocol_version = 0xC001;  // u32, in every request
inline constexpr uint16_t user_id = 0xC002;           // UTF-8, see valid_user_id()
inline constexpr uint16_t password = 0xC003;          // UTF-8, 8..256 bytes
inline constexpr uint16_t reported_address = 0xC004;  // XOR address form; repeatable
inline constexpr uint16_t observed_address = 0xC005;  // XOR address form
inline constexpr uint16_t presence = 0xC006;          // u32 flags, see presence_flag
inline constexpr uint16_t display_name = 0xC007;      // UTF-8, <= 128 bytes
inline constexpr uint16_t keepalive_interval = 0xC008;  // u32 seconds
inline constexpr uint16_t last_seen = 0xC009;         // u64 Unix seconds
inline constexpr uint16_t link_role = 0xC00A;         // u32, see link_role
inline constexpr uint16_t services = 0xC00B;          // u32 flags, see service_flag
inline constexpr uint16_t static_address = 0xC00C;    // XOR address form; entered by an admin
inline constexpr uint16_t retry_after = 0xC00D;       // u32 seconds (with 429)
inline constexpr uint16_t notice_reason = 0xC00E;     // UTF-8 text
inline constexpr uint16_t notice_code = 0xC00F;       // u32, see notice_code
inline constexpr uint16_t domain = 0xC010;            // UTF-8, an enterprise domain ("acme"); repeatable
inline constexpr uint16_t number_prefix = 0xC011;     // UTF-8, a phone-number prefix ("+81-6-1234-"); repeatable
inline constexpr uint16_t caller_id = 0xC012;         // UTF-8 user ID of who asks (forwarded lookups)
inline constexpr uint16_t lease_expires = 0xC013;     // u64 Unix seconds (0 = infinite)
inline constexpr uint16_t agent_name = 0xC014;        // UTF-8, the agent's certificate common name
inline constexpr uint16_t lease_address = 0xC015;     // XOR address form (port 0); repeatable (v4 and v6)
inline constexpr uint16_t call_id = 0xC020;           // UTF-8, 32 hex digits
inline constexpr uint16_t ice_description = 0xC021;   // UTF-8, ufrag/pwd/candidates, <= 4096 bytes
inline constexpr uint16_t key_material = 0xC022;      // 32 random bytes, per call
inline constexpr uint16_t call_state = 0xC023;        // u32, see call_state
inline constexpr uint16_t end_code = 0xC024;          // u32 error-style code of why a call ended
inline constexpr uint16_t turn_server = 0xC025;       // XOR address form; repeatable
inline constexpr uint16_t turn_username = 0xC026;     // UTF-8 "<expiry>:<user>" (coturn REST API)
inline constexpr uint16_t turn_password = 0xC027;     // UTF-8 base64(HMAC-SHA1(secret, username))
inline constexpr uint16_t stun_server = 0xC028;       // XOR address form
inline constexpr uint16_t ice_candidate = 0xC029;     // UTF-8, one SDP candidate line
inline constexpr uint16_t turn_lifetime = 0xC02A;     // u32 seconds the TURN credentials stay valid
inline constexpr uint16_t call_media = 0xC02B;        // u32: 0 datagrams (media), 1 reliable byte stream (data)
inline constexpr uint16_t media_profile = 0xC02C;     // u32, see media_profile: how the other party carries media
inline constexpr uint16_t voicemail_upload = 0xC040;  // u32, an upload in progress on this link
inline constexpr uint16_t voicemail_size = 0xC041;    // u64 bytes of the whole message
inline constexpr uint16_t voicemail_offset = 0xC042;  // u64 byte offset into the message
inline constexpr uint16_t voicemail_data = 0xC043;    // bytes, at most max_voicemail_chunk
inline constexpr uint16_t voicemail_id = 0xC044;      // u64, the message's number in its mailbox
inline constexpr uint16_t voicemail_entry = 0xC045;   // record, see proto/directory_records.hpp; repeatable
inline constexpr uint16_t voicemail_time = 0xC046;    // u64 Unix seconds the message was left
inline constexpr uint16_t directory_query = 0xC050;   // UTF-8 search text
inline constexpr uint16_t directory_kind = 0xC051;    // u32, see directory_kind
inline constexpr uint16_t directory_cursor = 0xC052;  // UTF-8 user ID the next page starts after
inline constexpr uint16_t directory_limit = 0xC053;   // u32 entries per page
inline constexpr uint16_t directory_entry = 0xC054;   // record, see proto/directory_records.hpp; repeatable
inline constexpr uint16_t directory_category = 0xC055;  // record (count + name); repeatable
inline constexpr uint16_t phone = 0xC056;             // UTF-8 phone number
inline constexpr uint16_t category = 0xC057;          // UTF-8 business category (empty: a person)
inline constexpr uint16_t publish = 0xC058;           // u32: 1 listed in the directory, 0 not
inline constexpr uint16_t presence_visibility = 0xC060;  // u32, see presence_visibility
inline constexpr uint16_t addresses_shown = 0xC061;      // u32: 1 lookups carry the reported addresses, 0 not
inline constexpr uint16_t contacts = 0xC062;             // UTF-8 user IDs separated by ',' (may be empty): the whole list
inline constexpr uint16_t card = 0xC070;           // bytes, a .card file (COSE_Sign1), at most max_card_attribute
inline constexpr uint16_t card_password = 0xC071;  // UTF-8, the card password as typed, at most 64 bytes
inline constexpr uint16_t card_route = 0xC072;     // UTF-8, the name of the card's access point the terminal chose
inline constexpr uint16_t card_units = 0xC073;     // u64 units left on the card's ledger entry
inline constexpr uint16_t card_refusal = 0xC074;   // u32, why a card was refused (rendezvous::CardRefusal)
inline constexpr uint16_t card_warning = 0xC075;   // u32 1: the units left do not pay for the next period
inline constexpr uint16_t card_area = 0xC076;      // UTF-8, a card area's code (node.toml [cards.areas])
inline constexpr uint16_t card_update_version = 0xC077;  // u64, the issuer update the terminal holds (0: none)
inline constexpr uint16_t card_update = 0xC078;    // bytes, the issuer's signed update (cards::CardUpdate), at most 12 KiB
inline constexpr uint16_t card_issuer_key = 0xC079;  // bytes, the 32-byte Ed25519 key the card verified under
inline constexpr uint16_t card_new_password = 0xC0D0;  // UTF-8, the holder's new card password, at most 64 bytes
inline constexpr uint16_t card_password_set = 0xC0D1;  // u64 Unix seconds the holder set the card's password; absent: the printed one
inline constexpr uint16_t card_password_required = 0xC0D2;  // u32 1: calls need the holder's own password ([cards] holder_password_required)
inline constexpr uint16_t card_key_rollover = 0xC0C0;  // bytes, repeatable: an old issuer key's COSE_Sign1 endorsing the new (cards::KeyRollover)
inline constexpr uint16_t scram_client_first = 0xC080;  // UTF-8 RFC 5802 client-first-message (login_begin request)
inline constexpr uint16_t scram_server_first = 0xC081;  // UTF-8 server-first-message (login_begin success)
inline constexpr uint16_t scram_client_final = 0xC082;  // UTF-8 client-final-message (login request, instead of USER-ID + PASSWORD)
inline constexpr uint16_t scram_server_final = 0xC083;  // UTF-8 server-final-message "v=..." (login success)
// bytes, security::resume_token::token_size: in every login success; a login_resume request presents it
inline constexpr uint16_t resume_token = 0xC0F0;
inline constexpr uint16_t resume_token_lifetime = 0xC0F1;  // u32 seconds RESUME-TOKEN stays valid (login success)
inline constexpr uint16_t scram_credentials = 0xC084;   // UTF-8 "$scram-sha256$i=..$salt$StoredKey$ServerKey" (register, instead of PASSWORD)
// UTF-8 "LOCAL/REMOTE": the candidate types (host, srflx, prflx, relay) of the
// pair ICE selected, from the reporting party's side (call_path)
inline constexpr uint16_t ice_path = 0xC0A0;
}  // namespace attr

namespace directory_kind {
inline constexpr uint32_t name = 0;      // display name or user ID contains the text
inline constexpr uint32_t business = 1;  // businesses in the category named by the text
inline constexpr uint32_t phone = 2;     // the phone number is the text (digits compared)
inline constexpr uint32_t name_prefix = 3;  // display name, a word of it, or the user ID starts with the text
}  // namespace directory_kind

// Why the node sends a notice: what a client acts on (NOTICE-REASON is the
// text for people). 0 is never sent, so a missing code is not mistaken for one.
namespace notice_code {
inline constexpr uint32_t displaced = 1;          // the user logged in on another presence link
inline constexpr uint32_t logged_out = 2;         // a logout from another link ended this presence
inline constexpr uint32_t shutting_down = 3;      // the node is stopping
inline constexpr uint32_t presence_expired = 4;   // keepalives missed
inline constexpr uint32_t account_ended = 5;      // the account was removed or its password changed
inline constexpr uint32_t id_taken_by_agent = 6;  // the user ID now belongs to a LAN agent's route
inline constexpr uint32_t node_full = 7;          // refused at open: the node-wide link cap
inline constexpr uint32_t too_many_from_source = 8;  // refused at open: too many unauthenticated links from one address
inline constexpr uint32_t idle = 9;               // no request within the idle timeout
}  // namespace notice_code

// Which media profile a party speaks (docs/webrtc.md). The call request says
// the caller's; the node says the other party's in the prepare answer, the
// ring and the accepted call_event, so a terminal offers or answers in the
// browser's profile (SDP, DTLS-SRTP) when the other side is a browser.
namespace media_profile {
inline constexpr uint32_t native = 0;  // ICE-DESCRIPTION in the terminal's codec, packets sealed with KEY-MATERIAL
inline constexpr uint32_t webrtc = 1;  // ICE-DESCRIPTION is an SDP offer/answer; DTLS-SRTP keys the media
}  // namespace media_profile

namespace call_state {
inline constexpr uint32_t ringing = 0;
inline constexpr uint32_t accepted = 1;
inline constexpr uint32_t ended = 2;
// In the call answer only: the callee is a LAN extension, rung through its agent;
// whether its terminal rings is not known yet (a call_event says what follows).
inline constexpr uint32_t routed_to_agent = 3;
// In the answer to a call request without ICE-DESCRIPTION: the call has an ID
// and the caller its STUN/TURN settings; nothing rings until the caller sends
// the call again with CALL-ID and its offer (docs/protocol.md).
inline constexpr uint32_t preparing = 4;
}  // namespace call_state

namespace presence_flag {
inline constexpr uint32_t online = 1u << 0;
inline constexpr uint32_t in_call = 1u << 1;
inline constexpr uint32_t voicemail_waiting = 1u << 2;
inline constexpr uint32_t static_address = 1u << 3;  // reachable at an admin-entered address
inline constexpr uint32_t addresses_hidden = 1u << 4;  // the user shows no reported addresses
}  // namespace presence_flag

// Who may look a user up (profile key presence=; docs/security.md).
namespace presence_visibility {
inline constexpr uint32_t anyone = 0;  // every logged-in user (the default)
inline constexpr uint32_t contacts = 1;  // the user and the IDs on the user's contact list
inline constexpr uint32_t nobody = 2;  // the user alone; to others an unknown ID
}  // namespace presence_visibility

namespace service_flag {
inline constexpr uint32_t voicemail = 1u << 0;
inline constexpr uint32_t call_waiting = 1u << 1;
inline constexpr uint32_t forwarding = 1u << 2;
}  // namespace service_flag

// A login either makes this link the user's presence (the terminal that can be
// rung) or only authenticates it for queries (whereis, logout).
namespace link_role {
inline constexpr uint32_t presence = 0;
inline constexpr uint32_t query = 1;
}  // namespace link_role

namespace error {
inline constexpr uint16_t bad_request = 400;       // malformed message or attribute
inline constexpr uint16_t unauthenticated = 401;   // wrong user ID/password, or not logged in
inline constexpr uint16_t forbidden = 403;         // e.g. registration closed
inline constexpr uint16_t unknown_user = 404;
inline constexpr uint16_t user_exists = 409;       // duplicate registration
inline constexpr uint16_t unsupported_version = 426;
inline constexpr uint16_t invalid_user_id = 422;
inline constexpr uint16_t too_many_attempts = 429;  // login rate limit; RETRY-AFTER says when
inline constexpr uint16_t offline = 480;            // user exists but is not logged in
inline constexpr uint16_t agent_policy_refused = 403;  // (same code as forbidden) the agent's edge policy
inline constexpr uint16_t no_live_lease = 481;      // extension known to the agent but has no live lease
inline constexpr uint16_t no_such_call = 481;       // (call, turn_credentials) no call with that CALL-ID for this link
inline constexpr uint16_t domain_held = 409;        // (agent_hello) another agent holds that domain
inline constexpr uint16_t server_error = 500;
inline constexpr uint16_t agent_offline = 502;      // the domain's agent is not connected
inline constexpr uint16_t agent_timeout = 504;      // the agent did not answer in time
// Call outcomes (in call responses, END-CODE and ring answers).
inline constexpr uint16_t no_answer = 408;          // the callee did not answer within the consent timeout
inline constexpr uint16_t link_lost = 410;          // the other side's link to the node was lost
inline constexpr uint16_t busy = 486;
inline constexpr uint16_t cancelled = 487;          // the caller hung up while it rang
inline constexpr uint16_t not_implemented = 501;
inline constexpr uint16_t declined = 603;
inline constexpr uint16_t media_refused = 488;      // (hangup ERROR-CODE, END-CODE) a party refused the other's media: a DTLS certificate other than the signalled fingerprint
inline constexpr uint16_t hung_up = 200;            // END-CODE only: a normal hang-up
inline constexpr uint16_t unavailable = 503;        // node shutting down or storage failing
inline constexpr uint16_t not_found = 404;          // (voicemail) no such message or upload
inline constexpr uint16_t too_large = 413;          // a voicemail above voicemail.max_message_kb
inline constexpr uint16_t over_quota = 507;
inline constexpr uint16_t card_refused = 402;       // (call, card_status) the card was refused; CARD-REFUSAL says why
inline constexpr uint16_t units_exhausted = 402;    // END-CODE: the card's units ran out during the call         // the mailbox would exceed voicemail.mailbox_quota_kb
}  // namespace error

std::string_view method_name(uint16_t method);
std::string_view error_reason(uint16_t code);

// User IDs: 1..64 bytes of [a-z0-9._-+], optionally followed by one "@domain"
// (domain 1..63 of [a-z0-9.-]); must start with a letter, a digit or '+'. Upper
// case is refused rather than folded so an ID has one spelling.
// Examples: "alice", "4106@acme", "+81-6-1234-0000".
inline constexpr size_t max_user_id_size = 128;
bool valid_user_id(std::string_view id);
// A connection agent places a card holder's call under the caller ID "card-"
// and the card ID (docs/cards.md, "Connection agents"), so no account may take
// an ID with that prefix: the callee could not tell the two apart.
inline constexpr std::string_view card_holder_id_prefix = "card-";
inline bool card_holder_id(std::string_view id) { return id.starts_with(card_holder_id_prefix); }
inline constexpr std::string_view card_holder_id_reason =
    "user IDs starting with card- are reserved for the calls connection agents place on access cards";
inline constexpr size_t min_password_size = 8;
inline constexpr size_t max_password_size = 256;
inline constexpr size_t max_display_name_size = 128;
inline constexpr size_t max_contacts = 32;  // IDs on one user's contact list
inline constexpr size_t max_voicemail_chunk = 8192;
inline constexpr size_t max_card_attribute = 8192;  // a card with a large area table is about 2 KB (a QR code's limit)
inline constexpr size_t max_card_password_size = 64;  // VOICEMAIL-DATA per message

}  // namespace tsunagu::proto
