#include "rendezvous/upload_table.hpp"

namespace tsunagu::rendezvous {

uint32_t LocalUploadTable::begin(LinkId link, VoicemailUpload upload) {
  uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  bytes_ += upload.size;
  uploads_[{link, id}] = std::move(upload);
  return id;
}

VoicemailUpload* LocalUploadTable::find(LinkId link, uint32_t id) {
  auto it = uploads_.find({link, id});
  return it == uploads_.end() ? nullptr : &it->second;
}

std::optional<VoicemailUpload> LocalUploadTable::take(LinkId link, uint32_t id) {
  auto it = uploads_.find({link, id});
  if (it == uploads_.end()) return std::nullopt;
  VoicemailUpload upload = std::move(it->second);
  uploads_.erase(it);
  bytes_ -= upload.size;
  return upload;
}

void LocalUploadTable::drop_link(LinkId link) {
  for (auto it = uploads_.lower_bound({link, 0}); it != uploads_.end() && it->first.first == link;) {
    bytes_ -= it->second.size;
    it = uploads_.erase(it);
  }
}

bool LocalUploadTable::expired(const VoicemailUpload& upload, uint64_t now_ms) const {
  return now_ms - upload.started_ms > idle_ms_ || now_ms - upload.begun_ms > max_ms_;
}

size_t LocalUploadTable::drop_expired(uint64_t now_ms) {
  return std::erase_if(uploads_, [&](const auto& entry) {
    bool stale = expired(entry.second, now_ms);
    if (stale) bytes_ -= entry.second.size;
    return stale;
  });
}

size_t LocalUploadTable::on_link(LinkId link) const {
  size_t count = 0;
  for (auto it = uploads_.lower_bound({link, 0}); it != uploads_.end() && it->first.first == link; ++it) ++count;
  return count;
}

PendingUploads LocalUploadTable::from_sender(const std::string& caller) const {
  PendingUploads pending;
  for (const auto& [key, upload] : uploads_)
    if (upload.caller == caller) {
      ++pending.messages;
      pending.bytes += upload.size;
    }
  return pending;
}

PendingUploads LocalUploadTable::to_mailbox(const std::string& callee) const {
  PendingUploads pending;
  for (const auto& [key, upload] : uploads_)
    if (upload.callee == callee) {
      ++pending.messages;
      pending.bytes += upload.size;
    }
  return pending;
}

uint64_t LocalUploadTable::bytes_to_domain(const std::string& domain) const {
  uint64_t bytes = 0;
  if (domain.empty()) return 0;
  const std::string suffix = "@" + domain;
  for (const auto& [key, upload] : uploads_)
    if (upload.callee.ends_with(suffix)) bytes += upload.size;
  return bytes;
}

}  // namespace tsunagu::rendezvous
