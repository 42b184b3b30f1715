// Voicemail uploads in progress: announced, taking chunks, not finished yet.
// They live in memory and end with their link. Pure: times are passed in;
// the sweep that drops idle and too slow uploads is a deadline in NodeCore's
// DeadlineQueue.
//
// UploadTable is the interface NodeCore uses; LocalUploadTable is this
// process's memory. The sums the limits read (per link, sender, mailbox,
// domain, node) are its queries, so that a cluster (issue 19) can answer the
// per-sender and per-domain sums across nodes while the bytes stay local.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.hpp"
#include "rendezvous/presence_table.hpp"

namespace tsunagu::rendezvous {

struct VoicemailUpload {
  std::string caller, callee;
  uint64_t size = 0;  // announced
  Bytes data;
  uint64_t started_ms = 0;  // the last chunk (or the begin)
  uint64_t begun_ms = 0;
};

// Uploads in progress and the bytes they announced.
struct PendingUploads {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  friend bool operator==(const PendingUploads&, const PendingUploads&) = default;
};

class UploadTable {
 public:
  virtual ~UploadTable() = default;
  // Adds the upload; returns its ID on this link (never 0).
  virtual uint32_t begin(LinkId link, VoicemailUpload upload) = 0;
  virtual VoicemailUpload* find(LinkId link, uint32_t id) = 0;
  virtual std::optional<VoicemailUpload> take(LinkId link, uint32_t id) = 0;
  virtual void drop_link(LinkId link) = 0;
  // Drops every upload idle or running too long at `now_ms` (expired()); returns how many.
  virtual size_t drop_expired(uint64_t now_ms) = 0;
  virtual bool expired(const VoicemailUpload& upload, uint64_t now_ms) const = 0;
  virtual size_t on_link(LinkId link) const = 0;
  virtual PendingUploads from_sender(const std::string& caller) const = 0;
  virtual PendingUploads to_mailbox(const std::string& callee) const = 0;
  // Bytes announced for the mailboxes EXT@`domain`.
  virtual uint64_t bytes_to_domain(const std::string& domain) const = 0;
  virtual uint64_t pending_bytes() const = 0;  // all uploads
  virtual size_t size() const = 0;
  bool empty() const { return size() == 0; }
};

class LocalUploadTable final : public UploadTable {
 public:
  // An upload with no chunk for `idle_ms`, or not finished `max_ms` after it began, is expired.
  LocalUploadTable(uint64_t idle_ms, uint64_t max_ms) : idle_ms_(idle_ms), max_ms_(max_ms) {}
  uint32_t begin(LinkId link, VoicemailUpload upload) override;
  VoicemailUpload* find(LinkId link, uint32_t id) override;
  std::optional<VoicemailUpload> take(LinkId link, uint32_t id) override;
  void drop_link(LinkId link) override;
  size_t drop_expired(uint64_t now_ms) override;
  bool expired(const VoicemailUpload& upload, uint64_t now_ms) const override;
  size_t on_link(LinkId link) const override;
  PendingUploads from_sender(const std::string& caller) const override;
  PendingUploads to_mailbox(const std::string& callee) const override;
  uint64_t bytes_to_domain(const std::string& domain) const override;
  uint64_t pending_bytes() const override { return bytes_; }
  size_t size() const override { return uploads_.size(); }

 private:
  uint64_t idle_ms_, max_ms_;
  std::map<std::pair<LinkId, uint32_t>, VoicemailUpload> uploads_;  // (link, upload ID)
  uint32_t next_id_ = 1;
  uint64_t bytes_ = 0;  // announced sizes of all uploads in progress
};

}  // namespace tsunagu::rendezvous
