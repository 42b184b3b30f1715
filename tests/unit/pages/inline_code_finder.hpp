#pragma once
// Finds what a Content-Security-Policy of default-src 'self' would block in an HTML
// page: a <script> with a body, an on...= event handler attribute, a style=
// attribute, a <style> element, and javascript: URLs. The node's pages must have
// none of them (scripts are ES modules loaded by src, styles come from app.css).

#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::pages::testing {

// One line per finding: "line 12: <button onclick=...>: an event handler attribute".
std::vector<std::string> inline_code_in(std::string_view html);

}  // namespace tsunagu::pages::testing
