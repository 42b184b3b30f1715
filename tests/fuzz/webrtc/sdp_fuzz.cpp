// Fuzz target: the SDP parser on the whole input; what parses must answer, and
// the answer must parse back with the offer's Opus and telephone-event payload
// types and our credentials. The candidate parser and the RFC 7983 classifier
// take the input too.
//
// Seeds (sdp_corpus/): the offers and answers captured from Chromium in
// tests/unit/webrtc/fixtures/ (see the README there).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "webrtc/packet_demux.hpp"
#include "webrtc/session_description.hpp"

using namespace tsunagu;
using namespace tsunagu::webrtc;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)classify_packet(ByteView(reinterpret_cast<const std::byte*>(data), size));
  if (auto candidate = parse_candidate(text)) require(candidate->component >= 1 && candidate->component <= 256);

  auto offer = parse_session_description(text);
  if (!offer) {
    require(!offer.error().detail.empty());
    return 0;
  }
  require(size <= max_sdp_size);
  require(offer->audio_index < offer->media.size() && offer->media.size() <= max_media_sections);
  const MediaSection& audio = offer->audio();
  require(audio.opus_payload_type.has_value() && audio.setup.has_value() && audio.rtcp_mux);
  require(audio.candidates.size() <= max_candidates);

  AnswerParameters ours;
  ours.session_id = 1;
  ours.ice_ufrag = "fuzz";
  ours.ice_pwd = "0123456789abcdefghijklmnop";
  ours.fingerprint_sha256 =
      "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
  ours.setup = *audio.setup == SetupRole::active ? SetupRole::passive : SetupRole::active;
  ours.ssrc = 7;
  ours.cname = "fuzz";
  auto answer = build_answer(*offer, ours);
  require(answer.has_value());
  auto back = parse_session_description(*answer);
  require(back.has_value());
  require(back->media.size() == offer->media.size());
  require(back->audio_index == offer->audio_index);
  require(back->audio().opus_payload_type == audio.opus_payload_type);
  require(back->audio().telephone_event_payload_type == audio.telephone_event_payload_type);
  require(back->audio().ice_ufrag == "fuzz" && back->audio().setup == ours.setup);
  require(back->audio().mid == audio.mid);
  return 0;
}
