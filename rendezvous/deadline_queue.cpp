#include "rendezvous/deadline_queue.hpp"

namespace tsunagu::rendezvous {

void DeadlineQueue::schedule(uint64_t when_ms, DeadlineKind kind, std::string key) {
  auto [it, inserted] = index_.try_emplace({kind, key}, when_ms);
  if (!inserted) {
    if (it->second == when_ms) return;
    ordered_.erase(Deadline{it->second, kind, key});
    it->second = when_ms;
  }
  ordered_.insert(Deadline{when_ms, kind, std::move(key)});
}

bool DeadlineQueue::cancel(DeadlineKind kind, const std::string& key) {
  auto it = index_.find(std::pair<DeadlineKind, std::string>{kind, key});
  if (it == index_.end()) return false;
  ordered_.erase(Deadline{it->second, kind, key});
  index_.erase(it);
  return true;
}

std::optional<uint64_t> DeadlineQueue::when(DeadlineKind kind, const std::string& key) const {
  auto it = index_.find(std::pair<DeadlineKind, std::string>{kind, key});
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> DeadlineQueue::next() const {
  if (ordered_.empty()) return std::nullopt;
  return ordered_.begin()->when_ms;
}

std::optional<uint64_t> DeadlineQueue::next(const std::function<bool(DeadlineKind)>& wakes) const {
  // Only the keyless kinds are ever skipped, so this passes over a few entries at most.
  for (const auto& deadline : ordered_)
    if (wakes(deadline.kind)) return deadline.when_ms;
  return std::nullopt;
}

std::vector<Deadline> DeadlineQueue::take_due(uint64_t now_ms) {
  std::vector<Deadline> due;
  while (!ordered_.empty() && ordered_.begin()->when_ms <= now_ms) {
    auto node = ordered_.extract(ordered_.begin());
    index_.erase(std::pair<DeadlineKind, std::string>{node.value().kind, node.value().key});
    due.push_back(std::move(node.value()));
  }
  return due;
}

std::string link_key(uint64_t link) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[static_cast<size_t>(i)] = static_cast<char>(link & 0xFF);
    link >>= 8;
  }
  return key;
}

uint64_t link_of_key(std::string_view key) {
  uint64_t link = 0;
  for (char c : key) link = (link << 8) | static_cast<unsigned char>(c);
  return link;
}

}  // namespace tsunagu::rendezvous
