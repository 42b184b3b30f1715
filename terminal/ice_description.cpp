#include "terminal/ice_description.hpp"

#include <algorithm>

namespace tsunagu::terminal {
namespace {

bool is_ice_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool valid_ice_chars(std::string_view text, size_t min, size_t max) {
  return text.size() >= min && text.size() <= max && std::all_of(text.begin(), text.end(), is_ice_char);
}

constexpr std::string_view candidate_prefix = "a=candidate:";
constexpr std::string_view description_tag = "ice1";

}  // namespace

std::string_view check_ice_candidate_line(std::string_view line) {
  if (line.size() > max_ice_candidate_line) return "candidate line too long";
  if (line.substr(0, candidate_prefix.size()) != candidate_prefix) return "candidate line lacks a=candidate:";
  for (char c : line)
    if (c < 0x20 || c > 0x7e) return "candidate line has a control or non-ASCII byte";
  return {};
}

std::string_view check_ice_description(const IceDescription& d) {
  if (!valid_ice_chars(d.ufrag, 4, 256)) return "ufrag must be 4..256 ice-chars";
  if (!valid_ice_chars(d.password, 22, 256)) return "password must be 22..256 ice-chars";
  if (d.candidates.size() > max_ice_candidates) return "too many candidates";
  for (const auto& line : d.candidates)
    if (auto error = check_ice_candidate_line(line); !error.empty()) return error;
  return {};
}

Expected<std::string, std::string_view> encode_ice_description(const IceDescription& description) {
  if (auto error = check_ice_description(description); !error.empty()) return Unexpected(error);
  std::string out;
  out.append(description_tag).append(" ").append(description.ufrag).append(" ").append(description.password);
  for (const auto& line : description.candidates) out.append("\n").append(line);
  if (out.size() > max_ice_description_size) return Unexpected(std::string_view("description too long"));
  return out;
}

Expected<IceDescription, std::string_view> decode_ice_description(std::string_view text) {
  using Error = Unexpected<std::string_view>;
  if (text.size() > max_ice_description_size) return Error("description too long");
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);  // tolerate one trailing newline
  size_t end = text.find('\n');
  std::string_view header = text.substr(0, end);
  // "ice1 UFRAG PWD": exactly three fields separated by single spaces.
  size_t first = header.find(' ');
  size_t second = first == std::string_view::npos ? first : header.find(' ', first + 1);
  if (second == std::string_view::npos || header.substr(0, first) != description_tag ||
      header.find(' ', second + 1) != std::string_view::npos)
    return Error("header is not \"ice1 UFRAG PWD\"");
  IceDescription description;
  description.ufrag = std::string(header.substr(first + 1, second - first - 1));
  description.password = std::string(header.substr(second + 1));
  while (end != std::string_view::npos) {  // every '\n' starts a candidate line, empty or not
    size_t start = end + 1;
    end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? end : end - start);
    if (description.candidates.size() == max_ice_candidates) return Error("too many candidates");
    if (auto error = check_ice_candidate_line(line); !error.empty()) return Error(error);
    description.candidates.emplace_back(line);
  }
  if (auto error = check_ice_description(description); !error.empty()) return Error(error);
  return description;
}

}  // namespace tsunagu::terminal
