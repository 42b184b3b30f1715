#include "terminal/directory_commands.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "proto/directory_records.hpp"
#include "proto/profile_change.hpp"
#include "terminal/call_runner.hpp"
#include "terminal/cli_common.hpp"
#include "terminal/voicemail_audio.hpp"
#include "terminal/voicemail_client.hpp"

namespace tsunagu::terminal {
namespace {

// Error code and reason of an error response; 0 for success.
uint16_t error_of(const proto::Message& response, std::string& reason) {
  if (response.message_class != proto::MessageClass::error) return 0;
  const auto* code = response.find(proto::attr::error_code);
  auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
  reason = parsed ? std::string(parsed->reason) : "malformed error";
  return parsed ? parsed->code : 500;
}

int exit_for_code(uint16_t code) {
  if (code == 0) return 0;
  if (code == 1) return exit_network;
  if (code == proto::error::bad_request || code == proto::error::invalid_user_id) return exit_usage;
  if (code == proto::error::unknown_user) return exit_unknown_user;
  if (code == proto::error::unauthenticated) return exit_auth;
  if (code == proto::error::too_many_attempts) return exit_rate_limited;  // e.g. directory scans per account
  return exit_refused;
}

// For fetch and delete, 404 is a missing message, not an unknown user.
int message_exit(uint16_t code) { return code == proto::error::not_found ? exit_refused : exit_for_code(code); }

std::string when(uint64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

void print_entry(const proto::DirectoryEntry& e, bool json, bool first) {
  if (json) {
    std::cout << (first ? "" : ", ") << "{\"user\": " << json_string(e.user_id) << ", \"name\": "
              << json_string(e.display_name) << ", \"online\": " << (e.online ? "true" : "false")
              << ", \"verified\": " << (e.verified ? "true" : "false")
              << ", \"category\": " << json_string(e.category) << ", \"phone\": " << json_string(e.phone) << "}";
    return;
  }
  // The node's answers are other people's text: printed only as text.
  std::cout << proto::printable_text(e.user_id);
  if (!e.display_name.empty()) std::cout << "  \"" << proto::printable_text(e.display_name) << "\"";
  std::cout << "  " << (e.online ? "online" : "offline");
  if (!e.category.empty()) std::cout << "  [" << proto::printable_text(e.category) << "]";
  if (!e.phone.empty()) std::cout << "  " << proto::printable_text(e.phone);
  // Anyone may claim a name or a number in their own row; the operator vouches for some.
  if (!e.verified) std::cout << "  (unverified)";
  std::cout << "\n";
}

}  // namespace

struct DirectoryCommands {
  CLI::App* directory = nullptr;
  CLI::App *search = nullptr, *business = nullptr, *categories = nullptr, *number = nullptr;
  CLI::App* profile = nullptr;
  CLI::App *profile_show = nullptr, *profile_set = nullptr;
  CLI::App* voicemail = nullptr;
  CLI::App *vm_send = nullptr, *vm_list = nullptr, *vm_fetch = nullptr, *vm_delete = nullptr;
  NodeArgs search_args, business_args, categories_args, number_args, show_args, set_args;
  NodeArgs send_args, list_args, fetch_args, delete_args;
  CLI::App *vm_record = nullptr, *vm_play = nullptr;
  NodeArgs record_args, play_args;
  std::string from, to;
  double seconds = 60;
  audio::DeviceSpec device;
  std::string text;
  bool prefix = false, all = false, keep = false;
  uint32_t limit = 0;
  std::string after;
  std::vector<std::string> words;
  std::string callee, file, mailbox = env_or("TSUNAGU_MAILBOX", "");
  std::vector<uint64_t> ids;
};

std::shared_ptr<DirectoryCommands> add_directory_commands(CLI::App& app) {
  auto c = std::make_shared<DirectoryCommands>();
  c->directory = app.add_subcommand("directory", "Search the published directory and the business directory");
  c->directory->require_subcommand(1);
  auto paging = [&](CLI::App* command) {
    command->add_option("--limit", c->limit, "Entries per page, 1-50 (default 20)")->check(CLI::Range(1, 50));
    command->add_option("--after", c->after, "Start after this user ID (the cursor a previous page printed)");
    command->add_flag("--all", c->all, "Fetch every page");
  };
  c->search = c->directory->add_subcommand(
      "search", "Published users whose name or user ID contains TEXT (case-insensitive), in user-ID order");
  c->search_args.add_to(c->search, true);
  c->search->add_option("TEXT", c->text, "Text to look for")->required();
  c->search->add_flag("--prefix", c->prefix, "Match only where the name, a word of it, or the user ID starts with TEXT");
  paging(c->search);
  c->business = c->directory->add_subcommand("business", "Published businesses in CATEGORY (e.g. \"hospital\")");
  c->business_args.add_to(c->business, true);
  c->business->add_option("CATEGORY", c->text, "Business category (case-insensitive)")->required();
  paging(c->business);
  c->categories = c->directory->add_subcommand("categories", "The business categories in use, with how many businesses");
  c->categories_args.add_to(c->categories, true);
  c->number = c->directory->add_subcommand("number", "The published user(s) with phone number PHONE (digits compared)");
  c->number_args.add_to(c->number, true);
  c->number->add_option("PHONE", c->text, "Phone number, e.g. +81-6-1234-0000")->required();

  c->profile = app.add_subcommand("profile", "Show or change your own directory row");
  c->profile->require_subcommand(1);
  c->profile_show = c->profile->add_subcommand("show", "Show your directory row");
  c->show_args.add_to(c->profile_show, true);
  c->profile_set = c->profile->add_subcommand(
      "set", "Change your directory row: name=TEXT phone=NUMBER category=TEXT publish=yes|no voicemail=yes|no "
             "presence=anyone|contacts|nobody contacts=ID,ID,... addresses=yes|no");
  c->set_args.add_to(c->profile_set, true);
  c->profile_set->add_option("KEY=VALUE", c->words, "Fields to change (phone= or category= empty: remove)")->required();

  c->voicemail = app.add_subcommand("voicemail", "Leave voicemail, and list, fetch or delete your own");
  c->voicemail->require_subcommand(1);
  c->vm_send = c->voicemail->add_subcommand("send", "Leave FILE (any bytes, e.g. a recording) in ID's mailbox");
  c->send_args.add_to(c->vm_send, false);
  c->vm_send->add_option("ID", c->callee, "Whose mailbox")->required();
  c->vm_send->add_option("FILE", c->file, "The message")->required()->check(CLI::ExistingFile);
  c->vm_list = c->voicemail->add_subcommand("list", "List the messages waiting for you");
  c->list_args.add_to(c->vm_list, true);
  c->vm_fetch = c->voicemail->add_subcommand(
      "fetch", "Save your messages (all, or the IDs given) into the mailbox folder, then delete them on the node");
  c->fetch_args.add_to(c->vm_fetch, false);
  c->vm_fetch->add_option("ID", c->ids, "Message IDs (default: all)");
  c->vm_fetch->add_option("--mailbox", c->mailbox, "Folder to save into ($TSUNAGU_MAILBOX; default: the current folder)");
  c->vm_fetch->add_flag("--keep", c->keep, "Do not delete them on the node");
  c->vm_record = c->voicemail->add_subcommand(
      "record", "Record a message from the microphone (until Enter) or --from FILE, and leave it in ID's mailbox "
                "as Ogg Opus");
  c->record_args.add_to(c->vm_record, false);
  c->vm_record->add_option("ID", c->callee, "Whose mailbox")->required();
  c->vm_record->add_option("--from", c->from, "Record from FILE (WAV, FLAC, Ogg, ... at any rate) instead of the microphone");
  c->vm_record->add_option("--seconds", c->seconds, "At most this long (default 60, at most 300)")
      ->check(CLI::Range(1.0, max_recording_seconds));
  c->vm_record->add_option("--input-device", c->device.name, "The microphone (a PulseAudio source or ALSA device name)");
  c->vm_play = c->voicemail->add_subcommand("play", "Play your message N on the speaker, or --to FILE (kept on the node)");
  c->play_args.add_to(c->vm_play, false);
  c->vm_play->add_option("N", c->ids, "The message ID (voicemail list)")->required()->expected(1);
  c->vm_play->add_option("--to", c->to, "Write the sound into FILE (.wav, .flac, .ogg) instead of playing it");
  c->vm_play->add_option("--output-device", c->device.name, "The speaker (a PulseAudio sink or ALSA device name)");
  c->vm_delete = c->voicemail->add_subcommand("delete", "Delete messages on the node without fetching them");
  c->delete_args.add_to(c->vm_delete, false);
  c->vm_delete->add_option("ID", c->ids, "Message IDs")->required();
  return c;
}

namespace {

int run_search(DirectoryCommands& c, NodeArgs& args, uint32_t kind) {
  int code = 0;
  auto options = args.prepare(code);
  if (!options) return code;
  bool json = args.json;
  return run_query(*options, [&](NodeClient& client, int& exit_code) {
    auto first = std::make_shared<bool>(true);
    auto count = std::make_shared<size_t>(0);
    if (json) std::cout << "{\"entries\": [";
    // Owned by the callbacks: the request's answer arrives after this function returned.
    auto page = std::make_shared<std::function<void(std::string)>>();
    *page = [&, first, count, weak = std::weak_ptr(page)](std::string cursor) {
      client.request(
          proto::method::directory_search,
          [&](proto::MessageBuilder& b) {
            b.add_u32(proto::attr::directory_kind, kind);
            b.add_string(proto::attr::directory_query, c.text);
            if (!cursor.empty()) b.add_string(proto::attr::directory_cursor, cursor);
            if (c.limit != 0) b.add_u32(proto::attr::directory_limit, c.limit);
          },
          [&, first, count, self = weak.lock()](const proto::Message* response, std::string_view error) {
            std::string reason;
            if (response == nullptr) {
              std::cerr << "tsunagu: directory: " << error << std::endl;
              exit_code = exit_network;
              return client.stop();
            }
            if (uint16_t number = error_of(*response, reason)) {
              if (json) std::cout << "]}" << std::endl;
              std::cerr << "tsunagu: directory: " << reason << std::endl;
              exit_code = exit_for_code(number);
              return client.stop();
            }
            for (const auto* a : response->find_all(proto::attr::directory_entry)) {
              auto entry = proto::decode_directory_entry(a->value);
              if (!entry) continue;
              print_entry(*entry, json, *first);
              *first = false;
              ++*count;
            }
            std::string next;
            if (const auto* n = response->find(proto::attr::directory_cursor)) next = proto::read_string(*n);
            if (!next.empty() && c.all) return (*self)(next);
            if (json) {
              std::cout << "], \"next\": " << (next.empty() ? "null" : json_string(next)) << "}" << std::endl;
            } else {
              if (*count == 0) std::cout << "no published match\n";
              if (!next.empty()) std::cout << "more: repeat with --after " << next << " (or use --all)\n";
              std::cout << std::flush;
            }
            client.stop();
          });
    };
    (*page)(c.after);
  });
}

int run_categories(NodeArgs& args) {
  int code = 0;
  auto options = args.prepare(code);
  if (!options) return code;
  bool json = args.json;
  return run_query(*options, [&](NodeClient& client, int& exit_code) {
    client.request(proto::method::directory_categories, [](proto::MessageBuilder&) {},
                   [&](const proto::Message* response, std::string_view error) {
                     std::string reason;
                     if (response == nullptr || error_of(*response, reason) != 0) {
                       std::cerr << "tsunagu: categories: " << (response ? reason : std::string(error)) << std::endl;
                       exit_code = response ? exit_refused : exit_network;
                       return client.stop();
                     }
                     bool first = true;
                     if (json) std::cout << "[";
                     for (const auto* a : response->find_all(proto::attr::directory_category)) {
                       auto category = proto::decode_category_count(a->value);
                       if (!category) continue;
                       if (json)
                         std::cout << (first ? "" : ", ") << "{\"category\": " << json_string(category->name)
                                   << ", \"businesses\": " << category->count << "}";
                       else
                         std::cout << proto::printable_text(category->name) << "  (" << category->count << ")\n";
                       first = false;
                     }
                     if (json) std::cout << "]";
                     else if (first) std::cout << "no published businesses";
                     std::cout << std::endl;
                     client.stop();
                   });
  });
}

void print_profile(const proto::Message& m, bool json) {
  auto text = [&](uint16_t type) {
    const auto* a = m.find(type);
    return a ? std::string(proto::read_string(*a)) : std::string();
  };
  auto number = [&](uint16_t type) {
    const auto* a = m.find(type);
    return a ? proto::read_u32(*a).value_or(0) : 0u;
  };
  bool publish = number(proto::attr::publish) != 0;
  bool voicemail = (number(proto::attr::services) & proto::service_flag::voicemail) != 0;
  uint32_t visibility = number(proto::attr::presence_visibility);
  std::string presence = visibility == proto::presence_visibility::nobody     ? "nobody"
                         : visibility == proto::presence_visibility::contacts ? "contacts"
                                                                              : "anyone";
  auto contacts = proto::split_contacts(text(proto::attr::contacts));
  bool addresses = number(proto::attr::addresses_shown) != 0;
  if (json) {
    std::cout << "{\"user\": " << json_string(text(proto::attr::user_id)) << ", \"name\": "
              << json_string(text(proto::attr::display_name)) << ", \"phone\": " << json_string(text(proto::attr::phone))
              << ", \"category\": " << json_string(text(proto::attr::category))
              << ", \"publish\": " << (publish ? "true" : "false") << ", \"voicemail\": " << (voicemail ? "true" : "false")
              << ", \"presence\": " << json_string(presence) << ", \"contacts\": [" << [&] {
                   std::string list;
                   for (const auto& id : contacts) list += (list.empty() ? "" : ", ") + json_string(id);
                   return list;
                 }() << "]"
              << ", \"addresses\": " << (addresses ? "true" : "false") << "}" << std::endl;
    return;
  }
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : proto::printable_text(s); };
  std::cout << "user:      " << proto::printable_text(text(proto::attr::user_id)) << "\nname:      " << or_dash(text(proto::attr::display_name))
            << "\nphone:     " << or_dash(text(proto::attr::phone))
            << "\ncategory:  " << or_dash(text(proto::attr::category))
            << "\npublish:   " << (publish ? "yes (listed in the directory)" : "no (not listed)")
            << "\nvoicemail: " << (voicemail ? "yes (callers may leave messages)" : "no")
            << "\npresence:  "
            << (presence == "nobody"     ? "nobody (others get \"unknown user\")"
                : presence == "contacts" ? "contacts (others get \"unknown user\")"
                                         : "anyone logged in")
            << "\ncontacts:  " << (contacts.empty() ? "-" : proto::printable_text(proto::join_contacts(contacts)))
            << "\naddresses: " << (addresses ? "yes (lookups show your private addresses)" : "no (hidden in lookups)")
            << std::endl;
}

int run_profile(DirectoryCommands& c, bool set) {
  NodeArgs& args = set ? c.set_args : c.show_args;
  proto::ProfileChange change;
  if (set) {
    auto parsed = proto::parse_profile_assignments(c.words);
    if (!parsed) {
      std::cerr << "tsunagu: profile set: " << parsed.error() << std::endl;
      return exit_usage;
    }
    change = *parsed;
  }
  int code = 0;
  auto options = args.prepare(code);
  if (!options) return code;
  bool json = args.json;
  return run_query(*options, [&](NodeClient& client, int& exit_code) {
    client.request(
        set ? proto::method::profile_set : proto::method::profile_get,
        [&](proto::MessageBuilder& b) { proto::add_profile_change(b, change); },
        [&](const proto::Message* response, std::string_view error) {
          std::string reason;
          if (response == nullptr) {
            std::cerr << "tsunagu: profile: " << error << std::endl;
            exit_code = exit_network;
          } else if (uint16_t number = error_of(*response, reason)) {
            std::cerr << "tsunagu: profile: " << reason << std::endl;
            exit_code = exit_for_code(number);
          } else {
            print_profile(*response, json);
          }
          client.stop();
        });
  });
}

std::optional<Bytes> read_whole_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    error = path + " is empty";
    return std::nullopt;
  }
  return to_bytes(text);
}

void report_delivery(const DeliveryResult& result, int& exit_code) {
  for (size_t i = 0; i < result.saved.size(); ++i) {
    std::cout << "saved " << result.saved[i];
    if (i < result.acknowledged.size()) std::cout << " (deleted on the node)";
    std::cout << "\n";
  }
  if (result.outcome.code != 0) {
    std::cerr << "tsunagu: voicemail: " << result.outcome.reason << std::endl;
    exit_code = message_exit(result.outcome.code);
  } else if (result.saved.empty()) {
    std::cout << "no messages\n";
  }
  std::cout << std::flush;
}

// A private folder for a message on its way in or out, removed afterwards.
struct ScratchFolder {
  std::string path;
  ScratchFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-voicemail-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path = pattern;
  }
  ~ScratchFolder() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

int run_voicemail_record(DirectoryCommands& c) {
  int code = 0;
  auto options = c.record_args.prepare(code);
  if (!options) return code;
  ScratchFolder scratch;
  if (scratch.path.empty()) return std::cerr << "tsunagu: cannot make a temporary folder\n", exit_network;
  std::string message = scratch.path + "/message.ogg";
  if (c.from.empty() && ::isatty(STDIN_FILENO))
    std::cerr << "recording for " << c.callee << " (at most " << c.seconds << " s): press Enter to stop" << std::endl;
  auto recorded = record_message(c.from, c.device, c.seconds, message);
  if (!recorded) return std::cerr << "tsunagu: voicemail record: " << recorded.error() << std::endl, exit_usage;
  std::cerr << "recorded " << *recorded << " s as Ogg Opus" << std::endl;
  return leave_voicemail(*options, c.callee, message);
}

int run_voicemail_play(DirectoryCommands& c) {
  int code = 0;
  auto options = c.play_args.prepare(code);
  if (!options) return code;
  ScratchFolder scratch;
  if (scratch.path.empty()) return std::cerr << "tsunagu: cannot make a temporary folder\n", exit_network;
  std::string saved;
  int fetched = run_query(*options, [&](NodeClient& client, int& exit_code) {
    deliver_voicemail(client, scratch.path, c.ids, false, [&](const DeliveryResult& result) {
      if (result.outcome.code != 0) {
        std::cerr << "tsunagu: voicemail play: " << result.outcome.reason << std::endl;
        exit_code = message_exit(result.outcome.code);
      } else if (result.saved.empty()) {
        std::cerr << "tsunagu: voicemail play: no message " << c.ids.front() << std::endl;
        exit_code = exit_unknown_user;
      } else {
        saved = result.saved.front();
      }
      client.stop();
    });
  });
  if (fetched != 0 || saved.empty()) return fetched != 0 ? fetched : exit_unknown_user;
  auto played = play_message(saved, c.to, c.device);
  if (!played) return std::cerr << "tsunagu: voicemail play: " << played.error() << std::endl, exit_usage;
  std::cout << (c.to.empty() ? "played " : "wrote " + c.to + ": ") << *played << " s" << std::endl;
  return 0;
}

int run_voicemail(DirectoryCommands& c) {
  if (c.vm_record->parsed()) return run_voicemail_record(c);
  if (c.vm_play->parsed()) return run_voicemail_play(c);
  if (c.vm_send->parsed()) {
    int code = 0;
    auto options = c.send_args.prepare(code);
    if (!options) return code;
    return leave_voicemail(*options, c.callee, c.file);
  }
  if (c.vm_list->parsed()) {
    int code = 0;
    auto options = c.list_args.prepare(code);
    if (!options) return code;
    bool json = c.list_args.json;
    return run_query(*options, [&](NodeClient& client, int& exit_code) {
      list_voicemail(client, [&](const VoicemailOutcome& outcome, std::vector<proto::VoicemailEntry> entries) {
        if (outcome.code != 0) {
          std::cerr << "tsunagu: voicemail list: " << outcome.reason << std::endl;
          exit_code = exit_for_code(outcome.code);
          return client.stop();
        }
        if (json) std::cout << "[";
        for (size_t i = 0; i < entries.size(); ++i) {
          const auto& e = entries[i];
          if (json)
            std::cout << (i ? ", " : "") << "{\"id\": " << e.id << ", \"from\": " << json_string(e.caller)
                      << ", \"time\": " << e.time << ", \"size\": " << e.size << "}";
          else
            std::cout << e.id << "  from " << e.caller << "  " << when(e.time) << "  " << e.size << " bytes\n";
        }
        if (json) std::cout << "]\n";
        else if (entries.empty()) std::cout << "no messages\n";
        std::cout << std::flush;
        client.stop();
      });
    });
  }
  if (c.vm_fetch->parsed()) {
    std::string folder = c.mailbox.empty() ? "." : c.mailbox;
    if (auto error = prepare_mailbox(folder)) {
      std::cerr << "tsunagu: " << *error << std::endl;
      return exit_usage;
    }
    int code = 0;
    auto options = c.fetch_args.prepare(code);
    if (!options) return code;
    return run_query(*options, [&](NodeClient& client, int& exit_code) {
      deliver_voicemail(client, folder, c.ids, !c.keep, [&](const DeliveryResult& result) {
        report_delivery(result, exit_code);
        client.stop();
      });
    });
  }
  int code = 0;
  auto options = c.delete_args.prepare(code);
  if (!options) return code;
  return run_query(*options, [&](NodeClient& client, int& exit_code) {
    auto remaining = std::make_shared<std::vector<uint64_t>>(c.ids.rbegin(), c.ids.rend());
    auto next = std::make_shared<std::function<void()>>();
    *next = [&, remaining, weak = std::weak_ptr(next)] {
      if (remaining->empty()) return client.stop();
      uint64_t id = remaining->back();
      remaining->pop_back();
      delete_voicemail(client, id, [&, id, self = weak.lock()](const VoicemailOutcome& outcome) {
        if (outcome.code != 0) {
          std::cerr << "tsunagu: voicemail delete " << id << ": " << outcome.reason << std::endl;
          exit_code = message_exit(outcome.code);
          return client.stop();
        }
        std::cout << "deleted " << id << std::endl;
        (*self)();
      });
    };
    (*next)();
  });
}

}  // namespace

std::optional<int> run_directory_commands(DirectoryCommands& c) {
  if (c.search->parsed())
    return run_search(c, c.search_args, c.prefix ? proto::directory_kind::name_prefix : proto::directory_kind::name);
  if (c.business->parsed()) return run_search(c, c.business_args, proto::directory_kind::business);
  if (c.number->parsed()) return run_search(c, c.number_args, proto::directory_kind::phone);
  if (c.categories->parsed()) return run_categories(c.categories_args);
  if (c.profile_show->parsed()) return run_profile(c, false);
  if (c.profile_set->parsed()) return run_profile(c, true);
  if (c.voicemail->parsed()) return run_voicemail(c);
  return std::nullopt;
}

bool call_missed(int exit_code) {
  return exit_code == exit_offline || exit_code == exit_call_busy || exit_code == exit_call_declined ||
         exit_code == exit_call_no_answer;
}

int leave_voicemail(NodeClientOptions options, const std::string& callee, const std::string& file) {
  std::string error;
  auto data = read_whole_file(file, error);
  if (!data) {
    std::cerr << "tsunagu: voicemail: " << error << std::endl;
    return exit_usage;
  }
  options.role = proto::link_role::query;
  options.reconnect = false;
  size_t size = data->size();
  return run_query(options, [&](NodeClient& client, int& exit_code) {
    send_voicemail(client, callee, std::move(*data), [&](const VoicemailOutcome& outcome) {
      if (outcome.code != 0) {
        std::cerr << "tsunagu: voicemail for " << callee << " refused: " << outcome.reason << std::endl;
        exit_code = exit_for_code(outcome.code);
      } else {
        std::cout << "voicemail for " << callee << " stored (" << size << " bytes, message " << outcome.id << ")"
                  << std::endl;
      }
      client.stop();
    });
  });
}

std::optional<int> offer_voicemail(const NodeClientOptions& options, const std::string& callee) {
  if (::isatty(STDIN_FILENO) == 0 || ::isatty(STDOUT_FILENO) == 0) return std::nullopt;
  std::cout << "Leave voicemail for " << callee << "? r: record from the microphone, or a file to send (Enter: none): "
            << std::flush;
  std::string path;
  if (!std::getline(std::cin, path)) return std::nullopt;
  while (!path.empty() && (path.back() == ' ' || path.back() == '\r')) path.pop_back();
  while (!path.empty() && path.front() == ' ') path.erase(path.begin());
  if (path.empty()) return std::nullopt;
  if (path != "r") return leave_voicemail(options, callee, path);
  ScratchFolder scratch;
  if (scratch.path.empty()) return std::cerr << "tsunagu: cannot make a temporary folder\n", exit_network;
  std::string message = scratch.path + "/message.ogg";
  std::cerr << "recording (at most 60 s): press Enter to stop" << std::endl;
  auto recorded = record_message({}, {}, 60, message);
  if (!recorded) return std::cerr << "tsunagu: voicemail record: " << recorded.error() << std::endl, exit_usage;
  return leave_voicemail(options, callee, message);
}

std::optional<std::string> prepare_mailbox(const std::string& directory) {
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    if (::mkdir(directory.c_str(), 0700) != 0) return "cannot create the mailbox folder " + directory;
    return std::nullopt;
  }
  if (!S_ISDIR(st.st_mode)) return directory + " is not a folder";
  if (::access(directory.c_str(), W_OK) != 0) return "cannot write into the mailbox folder " + directory;
  return std::nullopt;
}

void deliver_on_login(NodeClient& client, const std::string& directory) {
  deliver_voicemail(client, directory, {}, true, [](const DeliveryResult& result) {
    for (const auto& path : result.saved) std::cout << "voicemail saved: " << path << std::endl;
    if (result.outcome.code != 0)
      std::cerr << "tsunagu: voicemail delivery stopped: " << result.outcome.reason << " (retried at the next login)"
                << std::endl;
  });
}

}  // namespace tsunagu::terminal
