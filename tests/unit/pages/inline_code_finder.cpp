#include "inline_code_finder.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>

namespace tsunagu::pages::testing {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::size_t line_of(std::string_view html, std::size_t offset) {
  return 1 + static_cast<std::size_t>(std::count(html.begin(), html.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

struct Attribute {
  std::string name;   // lower case
  std::string value;
};

struct Tag {
  std::string name;  // lower case; empty for a closing tag, a comment or a declaration
  std::vector<Attribute> attributes;
  std::size_t end = 0;  // offset just after '>'
};

// Reads the tag that starts at html[start] == '<'.
Tag read_tag(std::string_view html, std::size_t start) {
  Tag tag;
  std::size_t at = start + 1;
  if (html.substr(at, 3) == "!--") {
    const std::size_t close = html.find("-->", at + 3);
    tag.end = close == std::string_view::npos ? html.size() : close + 3;
    return tag;
  }
  if (at < html.size() && (html[at] == '/' || html[at] == '!' || html[at] == '?')) {
    const std::size_t close = html.find('>', at);
    tag.end = close == std::string_view::npos ? html.size() : close + 1;
    return tag;
  }
  const std::size_t name_start = at;
  while (at < html.size() && !is_space(html[at]) && html[at] != '>' && html[at] != '/') ++at;
  tag.name = lower(html.substr(name_start, at - name_start));
  while (at < html.size()) {
    while (at < html.size() && (is_space(html[at]) || html[at] == '/')) ++at;
    if (at >= html.size() || html[at] == '>') break;
    const std::size_t attribute_start = at;
    while (at < html.size() && !is_space(html[at]) && html[at] != '=' && html[at] != '>' && html[at] != '/') ++at;
    Attribute attribute{lower(html.substr(attribute_start, at - attribute_start)), {}};
    while (at < html.size() && is_space(html[at])) ++at;
    if (at < html.size() && html[at] == '=') {
      ++at;
      while (at < html.size() && is_space(html[at])) ++at;
      if (at < html.size() && (html[at] == '"' || html[at] == '\'')) {
        const char quote = html[at];
        const std::size_t close = html.find(quote, at + 1);
        const std::size_t stop = close == std::string_view::npos ? html.size() : close;
        attribute.value = std::string(html.substr(at + 1, stop - at - 1));
        at = stop == html.size() ? stop : stop + 1;
      } else {
        const std::size_t value_start = at;
        while (at < html.size() && !is_space(html[at]) && html[at] != '>') ++at;
        attribute.value = std::string(html.substr(value_start, at - value_start));
      }
    }
    if (attribute.name.empty()) {
      ++at;  // a stray character: step over it so the scan always advances
      continue;
    }
    tag.attributes.push_back(std::move(attribute));
  }
  tag.end = at < html.size() ? at + 1 : html.size();
  return tag;
}

bool has_attribute(const Tag& tag, std::string_view name) {
  return std::any_of(tag.attributes.begin(), tag.attributes.end(), [&](const Attribute& a) { return a.name == name; });
}

}  // namespace

std::vector<std::string> inline_code_in(std::string_view html) {
  std::vector<std::string> findings;
  std::size_t at = html.find('<');
  while (at != std::string_view::npos) {
    const Tag tag = read_tag(html, at);
    const std::string where = "line " + std::to_string(line_of(html, at)) + ": <" + tag.name + ">: ";
    for (const Attribute& attribute : tag.attributes) {
      if (attribute.name.size() > 2 && attribute.name.starts_with("on")) {
        findings.push_back(where + "an event handler attribute " + attribute.name);
      } else if (attribute.name == "style") {
        findings.push_back(where + "a style attribute");
      } else if (lower(attribute.value).find("javascript:") != std::string::npos) {
        findings.push_back(where + "a javascript: URL in " + attribute.name);
      }
    }
    std::size_t next = tag.end;
    if (tag.name == "style") {
      findings.push_back(where + "a <style> element");
    } else if (tag.name == "script") {
      // The body runs to </script>, whatever it holds.
      const std::string rest = lower(html.substr(tag.end));
      const std::size_t close = rest.find("</script");
      const std::string_view body = html.substr(tag.end, close == std::string::npos ? std::string_view::npos : close);
      const bool empty = std::all_of(body.begin(), body.end(), is_space);
      if (!has_attribute(tag, "src")) {
        findings.push_back(where + "a script without src (inline code)");
      } else if (!empty) {
        findings.push_back(where + "a script with both src and a body");
      }
      next = close == std::string::npos ? html.size() : tag.end + close;
    }
    at = html.find('<', std::max(next, at + 1));
  }
  return findings;
}

}  // namespace tsunagu::pages::testing
