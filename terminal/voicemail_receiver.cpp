#include "terminal/voicemail_receiver.hpp"

#include <filesystem>

#include "base/files.hpp"
#include "proto/signalling.hpp"
#include "terminal/voicemail_client.hpp"

namespace tsunagu::terminal {
namespace sig = tsunagu::proto;

Bytes VoicemailReceiver::handle(const proto::Message& request, std::string* saved) {
  auto refuse = [&](uint16_t code, std::string_view reason) {
    auto refusal = proto::MessageBuilder::response_to(request, proto::MessageClass::error);
    refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
    refusal.add_error(code, reason);
    return refusal.finish();
  };
  auto u64 = [&](uint16_t type) -> std::optional<uint64_t> {
    const auto* a = request.find(type);
    return a ? proto::read_u64(*a) : std::nullopt;
  };
  const auto* mailbox = request.find(sig::attr::user_id);
  const auto* caller = request.find(sig::attr::caller_id);
  const auto* data = request.find(sig::attr::voicemail_data);
  auto id = u64(sig::attr::voicemail_id), size = u64(sig::attr::voicemail_size), time = u64(sig::attr::voicemail_time),
       offset = u64(sig::attr::voicemail_offset);
  if (mailbox == nullptr || caller == nullptr || data == nullptr || !id || !size || !time || !offset)
    return refuse(sig::error::bad_request, "Bad Request: a voicemail chunk needs USER-ID, CALLER-ID, VOICEMAIL-ID, "
                                           "-SIZE, -TIME, -OFFSET and -DATA");
  if (*size == 0 || *size > max_received_voicemail || data->value.size() > sig::max_voicemail_chunk ||
      proto::read_string(*caller).size() > sig::max_user_id_size)
    return refuse(sig::error::too_large, "Too Large: this terminal takes messages of 1 byte to 256 MiB");
  auto key = std::make_pair(std::string(proto::read_string(*mailbox)), *id);
  auto it = partial_.find(key);
  if (*offset == 0) {
    if (it == partial_.end()) {
      if (partial_.size() >= max_partial_voicemails) partial_.erase(partial_.begin());
      it = partial_.emplace(key, Partial{}).first;
    }
    it->second.entry = proto::VoicemailEntry{*id, *time, *size, std::string(proto::read_string(*caller))};
    it->second.data.clear();
  }
  if (it == partial_.end() || it->second.entry.size != *size || it->second.data.size() != *offset ||
      *offset + data->value.size() > *size)
    return refuse(sig::error::bad_request, "Bad Request: a chunk out of order; start the message again at offset 0");
  Partial& partial = it->second;
  partial.data.insert(partial.data.end(), data->value.begin(), data->value.end());
  if (partial.data.size() == *size) {
    std::error_code ec;
    std::filesystem::create_directories(directory_, ec);
    std::string path = (std::filesystem::path(directory_) / voicemail_file_name(partial.entry)).string();
    std::string content(reinterpret_cast<const char*>(partial.data.data()), partial.data.size());
    if (auto written = write_file_atomically(path, content, 0600); !written)
      return refuse(sig::error::server_error, "Server Error: " + written.error());
    if (saved != nullptr) *saved = path;
    partial_.erase(it);
  }
  auto ok = proto::MessageBuilder::response_to(request, proto::MessageClass::success);
  ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
  ok.add_u64(sig::attr::voicemail_offset, *offset + data->value.size());
  return ok.finish();
}

}  // namespace tsunagu::terminal
