#include "webrtc/session_description.hpp"

#include <algorithm>
#include <charconv>
#include <map>

namespace tsunagu::webrtc {

std::string_view to_string(SdpErrc code) {
  switch (code) {
    case SdpErrc::too_large: return "too large";
    case SdpErrc::malformed: return "malformed";
    case SdpErrc::no_usable_audio: return "no usable audio";
    case SdpErrc::missing_ice: return "missing ICE credentials";
    case SdpErrc::missing_fingerprint: return "missing sha-256 fingerprint";
    case SdpErrc::missing_setup: return "missing setup role";
    case SdpErrc::no_rtcp_mux: return "no rtcp-mux";
  }
  return "unknown";
}

std::string_view to_string(SetupRole role) {
  switch (role) {
    case SetupRole::actpass: return "actpass";
    case SetupRole::active: return "active";
    case SetupRole::passive: return "passive";
  }
  return "actpass";
}

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::sendrecv: return "sendrecv";
    case Direction::sendonly: return "sendonly";
    case Direction::recvonly: return "recvonly";
    case Direction::inactive: return "inactive";
  }
  return "sendrecv";
}

namespace {

Unexpected<SdpError> fail(SdpErrc code, std::string detail) { return Unexpected(SdpError{code, std::move(detail)}); }

Unexpected<SdpError> malformed_line(size_t line_number, std::string_view what) {
  return fail(SdpErrc::malformed, "line " + std::to_string(line_number) + ": " + std::string(what));
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

// The one scanner for both lines and fields: the piece of `text` from
// `position` up to the next `separator` (or the end), moving `position` past
// the separator. Empty pieces are returned, not skipped.
std::string_view next_piece(std::string_view text, size_t& position, char separator) {
  size_t end = std::min(text.find(separator, position), text.size());
  std::string_view piece = text.substr(position, end - position);
  position = end + 1;
  return piece;
}

// Splits on single spaces, as SDP fields are written; empty fields (two
// spaces) are kept so the caller sees them and refuses.
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  size_t position = 0;
  do {
    fields.push_back(next_piece(text, position, separator));
  } while (position <= text.size());
  return fields;
}

template <class Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  if (text.empty() || text.size() > 20) return std::nullopt;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// RFC 8839 5.4: ice-char = ALPHA / DIGIT / "+" / "/".
bool is_ice_chars(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  });
}
bool valid_ufrag(std::string_view ufrag) { return ufrag.size() >= 4 && ufrag.size() <= 256 && is_ice_chars(ufrag); }
bool valid_pwd(std::string_view pwd) { return pwd.size() >= 22 && pwd.size() <= 256 && is_ice_chars(pwd); }

// RFC 8866 token-ish values we copy into an answer (mid, cname): no spaces, no controls.
bool is_token(std::string_view text, size_t max_size) {
  return !text.empty() && text.size() <= max_size && std::all_of(text.begin(), text.end(), [](char c) {
    return c > ' ' && c < 0x7f;
  });
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// "ab:CD:..." with 32 bytes -> "AB:CD:..."; nullopt otherwise.
std::optional<std::string> normalized_sha256(std::string_view text) {
  constexpr size_t bytes = 32;
  if (text.size() != bytes * 3 - 1) return std::nullopt;
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    if (i % 3 == 2) {
      if (out[i] != ':') return std::nullopt;
    } else {
      if (!is_hex(out[i])) return std::nullopt;
      if (out[i] >= 'a') out[i] = static_cast<char>(out[i] - 'a' + 'A');
    }
  }
  return out;
}

std::optional<SetupRole> parse_setup(std::string_view value) {
  if (value == "actpass") return SetupRole::actpass;
  if (value == "active") return SetupRole::active;
  if (value == "passive") return SetupRole::passive;
  return std::nullopt;  // holdconn, or nonsense
}

// The values both levels may carry; the media level wins.
struct TransportAttributes {
  std::string ice_ufrag;
  std::string ice_pwd;
  bool ice_trickle = false;
  std::string fingerprint_sha256;
  std::optional<SetupRole> setup;
  bool saw_setup = false;  // an a=setup we could not use still counts as "said something"
};

struct SectionState {
  MediaSection section;
  TransportAttributes transport;
  std::map<uint8_t, std::string> fmtp;
  bool saw_direction = false;
};

// Attributes that may appear at either level. Returns false when `name` is not one.
Expected<bool, SdpError> parse_transport_attribute(std::string_view name, std::string_view value, size_t line_number,
                                                   TransportAttributes& into) {
  if (name == "ice-ufrag") {
    into.ice_ufrag = std::string(value);
  } else if (name == "ice-pwd") {
    into.ice_pwd = std::string(value);
  } else if (name == "ice-options") {
    for (std::string_view option : split(value, ' ')) {
      if (option == "trickle") into.ice_trickle = true;
    }
  } else if (name == "fingerprint") {
    size_t space = value.find(' ');
    if (space == std::string_view::npos) return malformed_line(line_number, "a=fingerprint without a hash name");
    std::string_view hash = value.substr(0, space);
    if (equals_ignoring_case(hash, "sha-256")) {
      auto normalized = normalized_sha256(value.substr(space + 1));
      if (!normalized) return malformed_line(line_number, "a sha-256 fingerprint that is not 32 hex bytes");
      into.fingerprint_sha256 = std::move(*normalized);
    }
    // Other hashes (sha-1, sha-512) are read past: we offer and check sha-256 only.
  } else if (name == "setup") {
    into.saw_setup = true;
    into.setup = parse_setup(value);
  } else {
    return false;
  }
  return true;
}

Expected<void, SdpError> parse_media_line(std::string_view value, size_t line_number, MediaSection& section) {
  std::vector<std::string_view> fields = split(value, ' ');
  if (fields.size() < 4) return malformed_line(line_number, "an m-line needs media, port, protocol and formats");
  if (!is_token(fields[0], 32) || !is_token(fields[2], 64)) return malformed_line(line_number, "bad m-line media or protocol");
  std::string_view port = fields[1];
  if (size_t slash = port.find('/'); slash != std::string_view::npos) port = port.substr(0, slash);  // port/count
  auto number = parse_number<uint16_t>(port);
  if (!number) return malformed_line(line_number, "bad m-line port");
  section.kind = std::string(fields[0]);
  section.port = *number;
  section.protocol = std::string(fields[2]);
  for (size_t i = 3; i < fields.size(); ++i) {
    if (!is_token(fields[i], 32)) return malformed_line(line_number, "bad m-line format");
    section.formats.emplace_back(fields[i]);
  }
  return {};
}

bool offers_format(const MediaSection& section, uint8_t payload_type) {
  std::string text = std::to_string(payload_type);
  return std::find(section.formats.begin(), section.formats.end(), text) != section.formats.end();
}

// "111 opus/48000/2"
Expected<void, SdpError> parse_rtpmap(std::string_view value, size_t line_number, MediaSection& section) {
  size_t space = value.find(' ');
  if (space == std::string_view::npos) return malformed_line(line_number, "a=rtpmap without an encoding");
  auto payload_type = parse_number<uint8_t>(value.substr(0, space));
  if (!payload_type || *payload_type > 127) return malformed_line(line_number, "a=rtpmap payload type is not 0-127");
  std::vector<std::string_view> encoding = split(value.substr(space + 1), '/');
  if (encoding.size() < 2 || encoding.size() > 3) return malformed_line(line_number, "a=rtpmap encoding is not name/clock[/channels]");
  if (!offers_format(section, *payload_type)) return {};  // not on the m-line: nothing to use
  bool clock_48k = encoding[1] == "48000";
  // A payload type mapped twice keeps its first meaning: Opus and telephone-event never share one.
  if (equals_ignoring_case(encoding[0], "opus") && clock_48k && encoding.size() == 3 && encoding[2] == "2") {
    if (!section.opus_payload_type && section.telephone_event_payload_type != payload_type) {
      section.opus_payload_type = *payload_type;
    }
  } else if (equals_ignoring_case(encoding[0], "telephone-event") && clock_48k) {
    if (!section.telephone_event_payload_type && section.opus_payload_type != payload_type) {
      section.telephone_event_payload_type = *payload_type;
    }
  }
  return {};
}

Expected<void, SdpError> parse_attribute(std::string_view attribute, size_t line_number, SectionState* media,
                                         TransportAttributes& session, std::vector<std::string>& bundle) {
  size_t colon = attribute.find(':');
  std::string_view name = attribute.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : attribute.substr(colon + 1);

  auto transport = parse_transport_attribute(name, value, line_number, media ? media->transport : session);
  if (!transport) return Unexpected(transport.error());
  if (*transport) return {};

  if (media == nullptr) {
    if (name == "group" && value.substr(0, 7) == "BUNDLE ") {
      bundle.clear();
      for (std::string_view mid : split(value.substr(7), ' ')) {
        if (!is_token(mid, 64)) return malformed_line(line_number, "bad mid in a=group:BUNDLE");
        bundle.emplace_back(mid);
      }
    }
    return {};  // other session attributes (msid-semantic, extmap-allow-mixed, ice-lite) are read past
  }

  MediaSection& section = media->section;
  if (name == "mid") {
    if (!is_token(value, 64)) return malformed_line(line_number, "bad a=mid");
    section.mid = std::string(value);
  } else if (name == "rtcp-mux") {
    section.rtcp_mux = true;
  } else if (name == "sendrecv" || name == "sendonly" || name == "recvonly" || name == "inactive") {
    section.direction = name == "sendrecv"   ? Direction::sendrecv
                        : name == "sendonly" ? Direction::sendonly
                        : name == "recvonly" ? Direction::recvonly
                                             : Direction::inactive;
  } else if (name == "rtpmap") {
    if (auto parsed = parse_rtpmap(value, line_number, section); !parsed) return parsed;
  } else if (name == "fmtp") {
    size_t space = value.find(' ');
    auto payload_type = parse_number<uint8_t>(value.substr(0, space));
    if (!payload_type || space == std::string_view::npos) return malformed_line(line_number, "bad a=fmtp");
    media->fmtp[*payload_type] = std::string(value.substr(space + 1));
  } else if (name == "candidate") {
    if (section.candidates.size() == max_candidates) {
      return fail(SdpErrc::too_large, "line " + std::to_string(line_number) + ": more than " +
                                          std::to_string(max_candidates) + " candidates on one m-line");
    }
    auto candidate = parse_candidate(attribute);
    if (!candidate) return malformed_line(line_number, candidate.error().detail);
    section.candidates.push_back(std::move(*candidate));
  } else if (name == "end-of-candidates") {
    section.end_of_candidates = true;
  }
  // extmap, ssrc, msid, rtcp, rtcp-fb, rtcp-rsize, rtcp-xr, ...: read past.
  return {};
}

void finish_section(SectionState& state, const TransportAttributes& session) {
  MediaSection& section = state.section;
  const TransportAttributes& own = state.transport;
  section.ice_ufrag = !own.ice_ufrag.empty() ? own.ice_ufrag : session.ice_ufrag;
  section.ice_pwd = !own.ice_pwd.empty() ? own.ice_pwd : session.ice_pwd;
  section.ice_trickle = own.ice_trickle || session.ice_trickle;
  section.fingerprint_sha256 = !own.fingerprint_sha256.empty() ? own.fingerprint_sha256 : session.fingerprint_sha256;
  section.setup = own.saw_setup ? own.setup : session.setup;
  if (section.opus_payload_type) {
    if (auto it = state.fmtp.find(*section.opus_payload_type); it != state.fmtp.end()) section.opus_fmtp = it->second;
  }
}

bool usable_audio(const MediaSection& section) {
  return section.kind == "audio" && section.port != 0 && section.protocol.find("SAVPF") != std::string::npos &&
         section.opus_payload_type.has_value();
}

}  // namespace

bool IceCandidate::is_mdns() const {
  return address.size() > 6 && equals_ignoring_case(std::string_view(address).substr(address.size() - 6), ".local");
}

Expected<IceCandidate, SdpError> parse_candidate(std::string_view value) {
  if (value.substr(0, 2) == "a=") value.remove_prefix(2);
  if (value.size() > 1024) return fail(SdpErrc::too_large, "a candidate longer than 1024 bytes");
  if (value.find_first_of("\r\n") != std::string_view::npos) return fail(SdpErrc::malformed, "a line break in a candidate");
  IceCandidate candidate;
  candidate.attribute = std::string(value);
  if (value.substr(0, 10) != "candidate:") return fail(SdpErrc::malformed, "a candidate must start with \"candidate:\"");
  std::vector<std::string_view> fields = split(value.substr(10), ' ');
  // foundation component transport priority address port "typ" type [extensions]
  if (fields.size() < 8 || fields[6] != "typ") return fail(SdpErrc::malformed, "a candidate needs 8 fields ending in typ TYPE");
  if (fields[0].empty() || fields[0].size() > 32 || !is_ice_chars(fields[0])) return fail(SdpErrc::malformed, "bad candidate foundation");
  auto component = parse_number<uint32_t>(fields[1]);
  if (!component || *component < 1 || *component > 256) return fail(SdpErrc::malformed, "bad candidate component");
  if (!equals_ignoring_case(fields[2], "udp") && !equals_ignoring_case(fields[2], "tcp")) {
    return fail(SdpErrc::malformed, "candidate transport is neither udp nor tcp");
  }
  auto priority = parse_number<uint32_t>(fields[3]);
  if (!priority) return fail(SdpErrc::malformed, "bad candidate priority");
  if (!is_token(fields[4], 255)) return fail(SdpErrc::malformed, "bad candidate address");
  auto port = parse_number<uint16_t>(fields[5]);
  if (!port) return fail(SdpErrc::malformed, "bad candidate port");
  if (fields[7] != "host" && fields[7] != "srflx" && fields[7] != "prflx" && fields[7] != "relay") {
    return fail(SdpErrc::malformed, "unknown candidate type");
  }
  candidate.foundation = std::string(fields[0]);
  candidate.component = *component;
  candidate.transport = equals_ignoring_case(fields[2], "udp") ? "udp" : "tcp";
  candidate.priority = *priority;
  candidate.address = std::string(fields[4]);
  candidate.port = *port;
  candidate.type = std::string(fields[7]);
  return candidate;
}

Expected<SessionDescription, SdpError> parse_session_description(std::string_view text) {
  if (text.size() > max_sdp_size) {
    return fail(SdpErrc::too_large, "more than " + std::to_string(max_sdp_size) + " bytes");
  }
  SessionDescription description;
  TransportAttributes session;
  std::vector<SectionState> sections;
  size_t line_number = 0;
  size_t position = 0;
  while (position < text.size()) {
    std::string_view line = next_piece(text, position, '\n');
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_number;
    if (line_number > max_sdp_lines) return fail(SdpErrc::too_large, "more than " + std::to_string(max_sdp_lines) + " lines");
    if (line.empty()) continue;  // a trailing blank line; some writers add one
    if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
      return malformed_line(line_number, "not <letter>=<value>");
    }
    if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
      return malformed_line(line_number, "a control character inside a line");
    }
    char type = line[0];
    std::string_view value = line.substr(2);
    if (line_number == 1 && line != "v=0") return malformed_line(line_number, "an SDP starts with v=0");
    if (type == 'm') {
      if (sections.size() == max_media_sections) {
        return fail(SdpErrc::too_large, "more than " + std::to_string(max_media_sections) + " m-lines");
      }
      sections.emplace_back();
      if (auto parsed = parse_media_line(value, line_number, sections.back().section); !parsed) {
        return Unexpected(parsed.error());
      }
    } else if (type == 'a') {
      SectionState* media = sections.empty() ? nullptr : &sections.back();
      if (auto parsed = parse_attribute(value, line_number, media, session, description.bundle_mids); !parsed) {
        return Unexpected(parsed.error());
      }
    }
    // v, o, s, t, c, b and the rest: read past (we answer from our own values).
  }
  if (line_number == 0) return fail(SdpErrc::malformed, "empty description");

  std::optional<size_t> audio;
  for (size_t i = 0; i < sections.size(); ++i) {
    finish_section(sections[i], session);
    if (!audio && usable_audio(sections[i].section)) audio = i;
    description.media.push_back(std::move(sections[i].section));
  }
  if (!audio) return fail(SdpErrc::no_usable_audio, "no audio m-line with opus/48000/2 over UDP/TLS/RTP/SAVPF");
  description.audio_index = *audio;
  const MediaSection& chosen = description.media[*audio];
  if (!valid_ufrag(chosen.ice_ufrag) || !valid_pwd(chosen.ice_pwd)) {
    return fail(SdpErrc::missing_ice, "the audio m-line has no valid a=ice-ufrag (4-256 ice-chars) and a=ice-pwd (22-256)");
  }
  if (chosen.fingerprint_sha256.empty()) return fail(SdpErrc::missing_fingerprint, "no a=fingerprint:sha-256");
  if (!chosen.setup) return fail(SdpErrc::missing_setup, "no a=setup:actpass|active|passive");
  if (!chosen.rtcp_mux) return fail(SdpErrc::no_rtcp_mux, "the audio m-line lacks a=rtcp-mux");
  return description;
}

namespace {

// Our side's values, whether we offer or answer.
struct LocalAudio {
  std::string_view ice_ufrag;
  std::string_view ice_pwd;
  std::string_view fingerprint_sha256;
  SetupRole setup = SetupRole::actpass;
  Direction direction = Direction::sendrecv;
  std::string_view mid;
  uint8_t opus_payload_type = 111;
  std::optional<uint8_t> telephone_event_payload_type;
  uint32_t ssrc = 0;
  std::string_view cname;
  const std::vector<std::string>* candidates = nullptr;
  bool end_of_candidates = false;
};

// Checks what would otherwise go into the text unchecked.
Expected<std::string, SdpError> checked_fingerprint(const LocalAudio& local) {
  if (!valid_ufrag(local.ice_ufrag) || !valid_pwd(local.ice_pwd)) {
    return fail(SdpErrc::missing_ice, "our ICE credentials break RFC 8839 5.4");
  }
  auto fingerprint = normalized_sha256(local.fingerprint_sha256);
  if (!fingerprint) return fail(SdpErrc::missing_fingerprint, "our fingerprint is not 32 hex bytes");
  if (!is_token(local.cname, 64)) return fail(SdpErrc::malformed, "our CNAME must be 1-64 visible ASCII characters");
  if (local.opus_payload_type > 127 ||
      (local.telephone_event_payload_type &&
       (*local.telephone_event_payload_type > 127 || *local.telephone_event_payload_type == local.opus_payload_type))) {
    return fail(SdpErrc::malformed, "payload types must be distinct and 0-127");
  }
  for (const std::string& candidate : *local.candidates) {
    if (auto parsed = parse_candidate(candidate); !parsed) return Unexpected(parsed.error());
  }
  return std::move(*fingerprint);
}

void write_session_header(std::string& out, uint64_t session_id) {
  out += "v=0\r\no=- " + std::to_string(session_id) + " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
}

void write_audio_section(std::string& out, const LocalAudio& local, const std::string& fingerprint) {
  auto line = [&out](std::string_view text) {
    out += text;
    out += "\r\n";
  };
  std::string opus = std::to_string(local.opus_payload_type);
  std::string formats = opus;
  std::string event;
  if (local.telephone_event_payload_type) {
    event = std::to_string(*local.telephone_event_payload_type);
    formats += " " + event;
  }
  line("m=audio 9 UDP/TLS/RTP/SAVPF " + formats);
  line("c=IN IP4 0.0.0.0");
  line("a=ice-ufrag:" + std::string(local.ice_ufrag));
  line("a=ice-pwd:" + std::string(local.ice_pwd));
  line("a=ice-options:trickle");
  line("a=fingerprint:sha-256 " + fingerprint);
  line("a=setup:" + std::string(to_string(local.setup)));
  if (!local.mid.empty()) line("a=mid:" + std::string(local.mid));
  line("a=" + std::string(to_string(local.direction)));
  line("a=rtcp-mux");
  line("a=rtpmap:" + opus + " opus/48000/2");
  // We send and decode 20 ms frames, with in-band FEC (media/voice_session.hpp).
  line("a=fmtp:" + opus + " minptime=20;useinbandfec=1");
  line("a=ptime:20");
  if (!event.empty()) {
    line("a=rtpmap:" + event + " telephone-event/48000");
    line("a=fmtp:" + event + " 0-15");
  }
  line("a=ssrc:" + std::to_string(local.ssrc) + " cname:" + std::string(local.cname));
  for (const std::string& candidate : *local.candidates) {
    std::string_view value = candidate;
    if (value.substr(0, 2) == "a=") value.remove_prefix(2);
    line("a=" + std::string(value));
  }
  if (local.end_of_candidates) line("a=end-of-candidates");
}

Direction answer_direction(Direction offered) {
  switch (offered) {
    case Direction::sendrecv: return Direction::sendrecv;
    case Direction::sendonly: return Direction::recvonly;
    case Direction::recvonly: return Direction::sendonly;
    case Direction::inactive: return Direction::inactive;
  }
  return Direction::inactive;
}

}  // namespace

Expected<std::string, SdpError> build_answer(const SessionDescription& offer, const AnswerParameters& ours) {
  if (offer.media.empty() || offer.audio_index >= offer.media.size()) {
    return fail(SdpErrc::no_usable_audio, "the offer holds no usable audio m-line");
  }
  const MediaSection& audio = offer.audio();
  if (!audio.opus_payload_type) return fail(SdpErrc::no_usable_audio, "the offer's audio m-line has no Opus");
  if (ours.setup == SetupRole::actpass) return fail(SdpErrc::missing_setup, "an answer is active or passive, never actpass");
  if (audio.setup == ours.setup) {
    return fail(SdpErrc::missing_setup, "the offer is " + std::string(to_string(*audio.setup)) + "; the answer must differ");
  }
  LocalAudio local{.ice_ufrag = ours.ice_ufrag,
                   .ice_pwd = ours.ice_pwd,
                   .fingerprint_sha256 = ours.fingerprint_sha256,
                   .setup = ours.setup,
                   .direction = answer_direction(audio.direction),
                   .mid = audio.mid,
                   .opus_payload_type = *audio.opus_payload_type,
                   .telephone_event_payload_type = audio.telephone_event_payload_type,
                   .ssrc = ours.ssrc,
                   .cname = ours.cname,
                   .candidates = &ours.candidates,
                   .end_of_candidates = ours.end_of_candidates};
  auto fingerprint = checked_fingerprint(local);
  if (!fingerprint) return Unexpected(fingerprint.error());

  std::string out;
  out.reserve(1024);
  write_session_header(out, ours.session_id);
  bool bundled = !audio.mid.empty() &&
                 std::find(offer.bundle_mids.begin(), offer.bundle_mids.end(), audio.mid) != offer.bundle_mids.end();
  if (bundled) out += "a=group:BUNDLE " + audio.mid + "\r\n";
  for (size_t i = 0; i < offer.media.size(); ++i) {
    const MediaSection& section = offer.media[i];
    if (i == offer.audio_index) {
      write_audio_section(out, local, *fingerprint);
      continue;
    }
    // Rejected: the same media and protocol, port 0, one format (RFC 8866 5.14 needs one).
    std::string format = section.formats.empty() ? "0" : section.formats.front();  // the parser never leaves it empty
    out += "m=" + section.kind + " 0 " + section.protocol + " " + format + "\r\n";
    out += "c=IN IP4 0.0.0.0\r\n";
    if (!section.mid.empty()) out += "a=mid:" + section.mid + "\r\n";
  }
  return out;
}

Expected<std::string, SdpError> build_offer(const OfferParameters& ours) {
  LocalAudio local{.ice_ufrag = ours.ice_ufrag,
                   .ice_pwd = ours.ice_pwd,
                   .fingerprint_sha256 = ours.fingerprint_sha256,
                   .setup = SetupRole::actpass,  // RFC 5763 5: the offerer must say actpass
                   .direction = Direction::sendrecv,
                   .mid = "0",
                   .opus_payload_type = ours.opus_payload_type,
                   .telephone_event_payload_type = ours.telephone_event_payload_type,
                   .ssrc = ours.ssrc,
                   .cname = ours.cname,
                   .candidates = &ours.candidates,
                   .end_of_candidates = ours.end_of_candidates};
  auto fingerprint = checked_fingerprint(local);
  if (!fingerprint) return Unexpected(fingerprint.error());
  std::string out;
  out.reserve(1024);
  write_session_header(out, ours.session_id);
  out += "a=group:BUNDLE 0\r\n";
  write_audio_section(out, local, *fingerprint);
  return out;
}

}  // namespace tsunagu::webrtc
