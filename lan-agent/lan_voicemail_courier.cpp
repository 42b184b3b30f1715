#include "lan-agent/lan_voicemail_courier.hpp"

#include "base/log.hpp"
#include "proto/directory_records.hpp"
#include "proto/signalling.hpp"
#include "lan-agent/terminal_identity.hpp"
#include "security/random.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::lanagent {
namespace sig = tsunagu::proto;
namespace {
constexpr uint64_t kJobTimeoutMs = 120'000;  // a whole delivery; a silent terminal cannot hold it longer
}  // namespace

// One extension's delivery: list its mailbox on the node, then for each
// message fetch a chunk from the node and pass it to the terminal, one chunk
// in flight, and delete the message once the terminal has all of it.
struct LanVoicemailCourier::Job : std::enable_shared_from_this<Job> {
  LanVoicemailCourier* courier = nullptr;
  std::string extension;
  std::vector<std::string> mailboxes;  // EXT@DOMAIN for each of our domains
  size_t mailbox = 0;
  std::vector<proto::VoicemailEntry> entries;
  size_t entry = 0;
  uint64_t offset = 0;
  transport::TlsLink* link = nullptr;
  bool ready = false;
  std::function<void()> on_ready;
  std::function<void(const proto::Message*)> on_answer;  // the terminal's answer; nullptr: the link is gone
  uv_timer_t* timer = nullptr;
  bool done = false;

  void fail(std::string_view why) {
    if (done) return;
    ++courier->stats_.failed;
    log::warn() << "voicemail for " << extension << ": not delivered (" << why << "); it stays on the node";
    end("failed");
  }
  void end(std::string_view outcome) {
    if (done) return;
    done = true;
    if (link != nullptr) {
      transport::TlsLink* open = link;
      link = nullptr;
      open->close(outcome);
    }
    if (timer != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer = nullptr;
    }
    courier->finish_job(outcome);
  }

  void start() {
    timer = new uv_timer_t;
    uv_timer_init(courier->loop_, timer);
    timer->data = this;
    uv_timer_start(timer, [](uv_timer_t* t) { static_cast<Job*>(t->data)->fail("timed out"); }, kJobTimeoutMs, 0);
    list_mailbox();
  }

  void list_mailbox() {
    if (mailbox == mailboxes.size()) return end("done");
    auto self = shared_from_this();
    courier->node_.request(
        sig::method::voicemail_list, [&](proto::MessageBuilder& b) { b.add_string(sig::attr::user_id, mailboxes[mailbox]); },
        [self](const proto::Message* answer) {
          if (self->done) return;
          if (answer == nullptr || answer->message_class != proto::MessageClass::success)
            return self->fail("the node did not list the mailbox");
          self->entries.clear();
          for (const auto* a : answer->find_all(sig::attr::voicemail_entry))
            if (auto e = proto::decode_voicemail_entry(a->value)) self->entries.push_back(*e);
          self->entry = 0;
          if (self->entries.empty()) {
            ++self->mailbox;
            return self->list_mailbox();
          }
          self->connect([self] { self->deliver_entry(); });
        });
  }

  void connect(std::function<void()> then) {
    if (ready) return then();
    on_ready = std::move(then);
    if (link != nullptr) return;
    auto leases = courier->core_.table().find_by_extension(extension, courier->now_());
    if (!leases) return fail("allocation table unreadable");
    std::optional<proto::SocketAddress> address;
    for (const auto& lease : *leases) {
      if (!lease.live(courier->now_())) continue;
      if (!address || lease.address.family == proto::SocketAddress::Family::ipv4) address = lease.address;
    }
    if (!address) return fail("no live lease");
    address->port = courier->settings_.terminal_port;
    std::weak_ptr<Job> weak = shared_from_this();
    transport::LinkCallbacks callbacks;
    callbacks.on_ready = [weak](transport::TlsLink& l) {
      auto self = weak.lock();
      if (!self || self->link != &l) return;
      if (auto refusal = terminal_refusal(l, self->extension, *self->courier->revocations_))
        return self->fail(*refusal);
      self->ready = true;
      if (auto ready_step = std::move(self->on_ready)) ready_step();
    };
    callbacks.on_message = [weak](transport::TlsLink& l, ByteView bytes) {
      auto self = weak.lock();
      if (!self || self->link != &l) return;
      auto decoded = proto::decode(bytes);
      if (!decoded || decoded->message.method != sig::method::voicemail_deliver ||
          decoded->message.message_class == proto::MessageClass::request)
        return;
      if (auto answer = std::move(self->on_answer)) answer(&decoded->message);
    };
    callbacks.on_closed = [weak](transport::TlsLink& l, std::string_view reason) {
      auto self = weak.lock();
      if (!self || self->link != &l) return;
      self->link = nullptr;
      self->fail("the terminal's connection: " + std::string(reason));
    };
    auto connected = transport::TlsLink::connect(courier->loop_, *address, courier->terminal_tls_, {}, std::move(callbacks));
    if (!connected) return fail("cannot connect to the terminal: " + connected.error().detail);
    link = *connected;
  }

  void deliver_entry() {
    if (entry == entries.size()) {
      ++mailbox;
      return list_mailbox();
    }
    offset = 0;
    fetch_chunk();
  }

  void fetch_chunk() {
    auto self = shared_from_this();
    const proto::VoicemailEntry& e = entries[entry];
    courier->node_.request(
        sig::method::voicemail_fetch,
        [&](proto::MessageBuilder& b) {
          b.add_string(sig::attr::user_id, mailboxes[mailbox]);
          b.add_u64(sig::attr::voicemail_id, e.id);
          b.add_u64(sig::attr::voicemail_offset, offset);
        },
        [self](const proto::Message* answer) {
          if (self->done) return;
          const auto* data = answer ? answer->find(sig::attr::voicemail_data) : nullptr;
          if (answer == nullptr || answer->message_class != proto::MessageClass::success || data == nullptr)
            return self->fail("the node did not hand out the message");
          self->pass_chunk(data->value);
        });
  }

  void pass_chunk(ByteView data) {
    const proto::VoicemailEntry& e = entries[entry];
    if (link == nullptr) return fail("no connection to the terminal");
    proto::TransactionId id;
    security::random_bytes(id.bytes);
    proto::MessageBuilder chunk(proto::MessageClass::request, sig::method::voicemail_deliver, id);
    chunk.add_u32(sig::attr::protocol_version, sig::protocol_version);
    chunk.add_string(sig::attr::user_id, mailboxes[mailbox]);
    chunk.add_u64(sig::attr::voicemail_id, e.id);
    chunk.add_u64(sig::attr::voicemail_size, e.size);
    chunk.add_u64(sig::attr::voicemail_time, e.time);
    chunk.add_string(sig::attr::caller_id, e.caller);
    chunk.add_u64(sig::attr::voicemail_offset, offset);
    chunk.add(sig::attr::voicemail_data, data);
    uint64_t expected = offset + data.size();
    auto self = shared_from_this();
    on_answer = [self, expected](const proto::Message* answer) {
      if (self->done) return;
      if (answer->message_class != proto::MessageClass::success) return self->fail("the terminal refused the message");
      const auto* at = answer->find(sig::attr::voicemail_offset);
      auto got = at ? proto::read_u64(*at) : std::nullopt;
      if (!got || *got != expected) return self->fail("the terminal lost its place in the message");
      self->offset = expected;
      if (self->offset < self->entries[self->entry].size) return self->fetch_chunk();
      self->acknowledge();
    };
    link->send(chunk.finish());
  }

  void acknowledge() {
    auto self = shared_from_this();
    const proto::VoicemailEntry& e = entries[entry];
    courier->node_.request(
        sig::method::voicemail_delete,
        [&](proto::MessageBuilder& b) {
          b.add_string(sig::attr::user_id, mailboxes[mailbox]);
          b.add_u64(sig::attr::voicemail_id, e.id);
        },
        [self](const proto::Message* answer) {
          if (self->done) return;
          if (answer == nullptr || answer->message_class != proto::MessageClass::success)
            return self->fail("the node did not take the acknowledgement (the terminal may get the message again)");
          const proto::VoicemailEntry& delivered = self->entries[self->entry];
          ++self->courier->stats_.delivered;
          log::info() << "voicemail " << delivered.id << " for " << self->mailboxes[self->mailbox] << " from "
                      << delivered.caller << " (" << delivered.size << " bytes) delivered to the terminal";
          ++self->entry;
          self->deliver_entry();
        });
  }
};

LanVoicemailCourier::LanVoicemailCourier(uv_loop_t* loop, AgentCore& core, NodeLink& node, CallSettings settings,
                                         std::shared_ptr<security::TlsContext> terminal_tls,
                                         std::shared_ptr<TerminalRevocations> revocations,
                                         std::function<int64_t()> now)
    : loop_(loop), core_(core), node_(node), settings_(settings), terminal_tls_(std::move(terminal_tls)),
      revocations_(std::move(revocations)), now_(std::move(now)) {}

LanVoicemailCourier::~LanVoicemailCourier() { stop(); }

void LanVoicemailCourier::deliver(const std::string& extension) {
  if (stopped_ || extension.empty() || core_.identity().domains.empty() || queued_.contains(extension)) return;
  queued_.insert(extension);
  queue_.push_back(extension);
  if (!job_) next_job();
}

void LanVoicemailCourier::deliver_all() {
  int64_t now = now_();
  auto bindings = core_.table().bindings();
  if (!bindings) return;
  for (const auto& binding : *bindings) {
    auto leases = core_.table().find_by_extension(binding.extension, now);
    if (!leases) continue;
    for (const auto& lease : *leases)
      if (lease.live(now)) {
        deliver(binding.extension);
        break;
      }
  }
}

void LanVoicemailCourier::next_job() {
  if (stopped_ || queue_.empty() || !node_.linked()) return;
  std::string extension = queue_.front();
  queue_.pop_front();
  queued_.erase(extension);
  job_ = std::make_shared<Job>();
  job_->courier = this;
  job_->extension = extension;
  for (const auto& domain : core_.identity().domains) job_->mailboxes.push_back(extension + "@" + domain);
  job_->start();
}

void LanVoicemailCourier::finish_job(std::string_view) {
  // Called from inside the job: keep it alive until this call returns.
  std::shared_ptr<Job> finished = std::move(job_);
  job_.reset();
  auto* async = new uv_idle_t;
  uv_idle_init(loop_, async);
  async->data = new std::pair<LanVoicemailCourier*, std::shared_ptr<Job>>(this, std::move(finished));
  uv_idle_start(async, [](uv_idle_t* h) {
    auto* state = static_cast<std::pair<LanVoicemailCourier*, std::shared_ptr<Job>>*>(h->data);
    LanVoicemailCourier* self = state->first;
    delete state;
    uv_idle_stop(h);
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* handle) { delete reinterpret_cast<uv_idle_t*>(handle); });
    self->next_job();
  });
}

void LanVoicemailCourier::stop() {
  if (stopped_) return;
  stopped_ = true;
  queue_.clear();
  queued_.clear();
  if (job_) job_->end("agent stopping");
}

}  // namespace tsunagu::lanagent
