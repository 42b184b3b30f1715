#include "terminal/voicemail_client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>

namespace tsunagu::terminal {
namespace {

constexpr size_t upload_window = 4;  // chunk requests in flight

VoicemailOutcome outcome_of(const proto::Message* response, std::string_view error) {
  VoicemailOutcome out;
  if (response == nullptr) {
    out.code = 1;
    out.reason = std::string(error);
    return out;
  }
  if (response->message_class == proto::MessageClass::error) {
    const auto* code = response->find(proto::attr::error_code);
    auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
    out.code = parsed ? parsed->code : 500;
    out.reason = parsed ? std::string(parsed->reason) : "malformed error response";
  }
  return out;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `data` to dir/name through a temporary file, fsyncs it and the directory.
bool save_file(const std::string& directory, const std::string& name, const Bytes& data, std::string& error) {
  std::string path = directory + "/" + name, temporary = path + ".part";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error = errno_text(temporary), false;
  size_t at = 0;
  while (at < data.size()) {
    ssize_t n = ::write(fd, data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno_text(temporary);
      ::close(fd);
      return false;
    }
    at += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) return error = errno_text(temporary), false;
  if (::rename(temporary.c_str(), path.c_str()) != 0) return error = errno_text(path), false;
  int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return true;
}

struct Upload : std::enable_shared_from_this<Upload> {
  NodeClient* client = nullptr;
  std::string callee;
  Bytes data;
  uint32_t id = 0;
  size_t next_offset = 0;
  size_t in_flight = 0;
  bool finished = false;
  std::function<void(const VoicemailOutcome&)> done;

  void end(const VoicemailOutcome& outcome) {
    if (finished) return;
    finished = true;
    done(outcome);
  }
  void pump() {
    auto self = shared_from_this();
    while (!finished && in_flight < upload_window && next_offset < data.size()) {
      size_t offset = next_offset, n = std::min(proto::max_voicemail_chunk, data.size() - offset);
      next_offset += n;
      ++in_flight;
      client->request(
          proto::method::voicemail_chunk,
          [&](proto::MessageBuilder& b) {
            b.add_u32(proto::attr::voicemail_upload, id);
            b.add_u64(proto::attr::voicemail_offset, offset);
            b.add(proto::attr::voicemail_data, ByteView(data).subspan(offset, n));
          },
          [self](const proto::Message* response, std::string_view error) {
            --self->in_flight;
            auto outcome = outcome_of(response, error);
            if (outcome.code != 0) return self->end(outcome);
            self->pump();
          });
    }
    if (!finished && in_flight == 0 && next_offset == data.size()) {
      finished = true;  // no more chunk answers to wait for
      client->request(
          proto::method::voicemail_finish, [&](proto::MessageBuilder& b) { b.add_u32(proto::attr::voicemail_upload, id); },
          [self](const proto::Message* response, std::string_view error) {
            auto outcome = outcome_of(response, error);
            if (outcome.code == 0)
              if (const auto* a = response->find(proto::attr::voicemail_id))
                outcome.id = proto::read_u64(*a).value_or(0);
            self->done(outcome);
          });
    }
  }
};

struct Delivery : std::enable_shared_from_this<Delivery> {
  NodeClient* client = nullptr;
  std::string directory;
  std::vector<uint64_t> only;
  bool acknowledge = true;
  std::deque<proto::VoicemailEntry> queue;
  Bytes current;
  DeliveryResult result;
  std::function<void(const DeliveryResult&)> done;

  void fail(VoicemailOutcome outcome) {
    result.outcome = std::move(outcome);
    done(result);
  }
  void next() {
    if (queue.empty()) return done(result);
    current.clear();
    fetch(0);
  }
  void fetch(uint64_t offset) {
    auto self = shared_from_this();
    uint64_t id = queue.front().id;
    client->request(
        proto::method::voicemail_fetch,
        [&](proto::MessageBuilder& b) {
          b.add_u64(proto::attr::voicemail_id, id);
          b.add_u64(proto::attr::voicemail_offset, offset);
        },
        [self, offset](const proto::Message* response, std::string_view error) {
          auto outcome = outcome_of(response, error);
          if (outcome.code == proto::error::not_found) {  // gone meanwhile (deleted elsewhere): skip it
            self->queue.pop_front();
            return self->next();
          }
          if (outcome.code != 0) return self->fail(outcome);
          const auto* data = response->find(proto::attr::voicemail_data);
          const auto* size = response->find(proto::attr::voicemail_size);
          auto total = size ? proto::read_u64(*size) : std::nullopt;
          if (data == nullptr || !total || offset != self->current.size() ||
              self->current.size() + data->value.size() > *total || (data->value.empty() && offset < *total))
            return self->fail(VoicemailOutcome{1, "malformed voicemail_fetch answer", 0});
          self->current.insert(self->current.end(), data->value.begin(), data->value.end());
          if (self->current.size() < *total) return self->fetch(self->current.size());
          self->save();
        });
  }
  void save() {
    proto::VoicemailEntry entry = queue.front();
    std::string name = voicemail_file_name(entry), error;
    if (!save_file(directory, name, current, error)) return fail(VoicemailOutcome{1, error, 0});
    result.saved.push_back(directory + "/" + name);
    if (!acknowledge) {
      queue.pop_front();
      return next();
    }
    auto self = shared_from_this();
    delete_voicemail(*client, entry.id, [self, id = entry.id](const VoicemailOutcome& outcome) {
      if (outcome.code != 0 && outcome.code != proto::error::not_found) return self->fail(outcome);
      self->result.acknowledged.push_back(id);
      self->queue.pop_front();
      self->next();
    });
  }
};

void list_page(NodeClient& client, uint64_t after, std::shared_ptr<std::vector<proto::VoicemailEntry>> all,
               std::function<void(const VoicemailOutcome&, std::vector<proto::VoicemailEntry>)> done) {
  client.request(
      proto::method::voicemail_list,
      [&](proto::MessageBuilder& b) {
        if (after != 0) b.add_u64(proto::attr::voicemail_id, after);
      },
      [&client, all, done](const proto::Message* response, std::string_view error) {
        auto outcome = outcome_of(response, error);
        if (outcome.code != 0) return done(outcome, {});
        for (const auto* a : response->find_all(proto::attr::voicemail_entry)) {
          auto entry = proto::decode_voicemail_entry(a->value);
          if (!entry) return done(VoicemailOutcome{1, "malformed VOICEMAIL-ENTRY from the node", 0}, {});
          all->push_back(std::move(*entry));
        }
        if (const auto* more = response->find(proto::attr::voicemail_id)) {
          auto cursor = proto::read_u64(*more);
          if (cursor && *cursor != 0) return list_page(client, *cursor, all, done);
        }
        done(outcome, std::move(*all));
      });
}

}  // namespace

std::string voicemail_file_name(const proto::VoicemailEntry& entry) {
  std::time_t t = static_cast<std::time_t>(entry.time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
  std::string caller;
  for (char c : entry.caller) caller += (c == '/' || c == '\0' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  return std::string(when) + "-" + caller + "-" + std::to_string(entry.id) + ".msg";
}

void send_voicemail(NodeClient& client, const std::string& callee, Bytes data,
                    std::function<void(const VoicemailOutcome&)> done) {
  auto upload = std::make_shared<Upload>();
  upload->client = &client;
  upload->callee = callee;
  upload->data = std::move(data);
  upload->done = std::move(done);
  uint64_t size = upload->data.size();
  client.request(
      proto::method::voicemail_begin,
      [&](proto::MessageBuilder& b) {
        b.add_string(proto::attr::user_id, callee);
        b.add_u64(proto::attr::voicemail_size, size);
      },
      [upload](const proto::Message* response, std::string_view error) {
        auto outcome = outcome_of(response, error);
        if (outcome.code != 0) return upload->end(outcome);
        const auto* id = response->find(proto::attr::voicemail_upload);
        auto value = id ? proto::read_u32(*id) : std::nullopt;
        if (!value) return upload->end(VoicemailOutcome{1, "malformed voicemail_begin answer", 0});
        upload->id = *value;
        upload->pump();
      });
}

void list_voicemail(NodeClient& client,
                    std::function<void(const VoicemailOutcome&, std::vector<proto::VoicemailEntry>)> done) {
  list_page(client, 0, std::make_shared<std::vector<proto::VoicemailEntry>>(), std::move(done));
}

void deliver_voicemail(NodeClient& client, const std::string& directory, std::vector<uint64_t> only, bool acknowledge,
                       std::function<void(const DeliveryResult&)> done) {
  auto delivery = std::make_shared<Delivery>();
  delivery->client = &client;
  delivery->directory = directory;
  delivery->only = std::move(only);
  delivery->acknowledge = acknowledge;
  delivery->done = std::move(done);
  list_voicemail(client, [delivery](const VoicemailOutcome& outcome, std::vector<proto::VoicemailEntry> entries) {
    if (outcome.code != 0) return delivery->fail(outcome);
    for (auto& entry : entries) {
      bool wanted = delivery->only.empty() ||
                    std::find(delivery->only.begin(), delivery->only.end(), entry.id) != delivery->only.end();
      if (wanted) delivery->queue.push_back(std::move(entry));
    }
    for (uint64_t id : delivery->only) {
      bool listed = std::any_of(delivery->queue.begin(), delivery->queue.end(),
                                [&](const proto::VoicemailEntry& e) { return e.id == id; });
      if (!listed) return delivery->fail(VoicemailOutcome{proto::error::not_found, "no message " + std::to_string(id), 0});
    }
    delivery->next();
  });
}

void delete_voicemail(NodeClient& client, uint64_t id, std::function<void(const VoicemailOutcome&)> done) {
  client.request(
      proto::method::voicemail_delete, [&](proto::MessageBuilder& b) { b.add_u64(proto::attr::voicemail_id, id); },
      [done = std::move(done)](const proto::Message* response, std::string_view error) {
        done(outcome_of(response, error));
      });
}

}  // namespace tsunagu::terminal
