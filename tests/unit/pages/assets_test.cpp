#include "pages/assets.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "inline_code_finder.hpp"

namespace {

using tsunagu::pages::all_assets;
using tsunagu::pages::Asset;
using tsunagu::pages::find_asset;
using tsunagu::pages::testing::inline_code_in;

std::string_view extension_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : path.substr(dot);
}

}  // namespace

TEST_CASE("every page docs/web.md lists is built in") {
  for (const char* path : {"/index.html", "/dial.html", "/directory.html", "/profile.html", "/voicemail.html",
                           "/admin.html", "/app.css", "/app.js", "/index.js", "/dial.js", "/directory.js",
                           "/profile.js", "/voicemail.js", "/admin.js"}) {
    CAPTURE(path);
    const Asset* asset = find_asset(path);
    REQUIRE(asset != nullptr);
    CHECK(asset->path == path);
    CHECK(!asset->body.empty());
  }
}

TEST_CASE("every asset is found by its own path, and / is the log-in page") {
  std::set<std::string_view> paths;
  for (const Asset& asset : all_assets()) {
    CAPTURE(asset.path);
    CHECK(find_asset(asset.path) == &asset);
    CHECK(paths.insert(asset.path).second);
  }
  REQUIRE(find_asset("/") != nullptr);
  CHECK(find_asset("/")->path == "/index.html");
}

TEST_CASE("paths that are not assets are not found") {
  for (const char* path : {"", "index.html", "/INDEX.HTML", "/index.html?x=1", "/../index.html", "/pages/index.html",
                           "/api/session", "/meson.build", "/embed_assets.py", "/assets.hpp"}) {
    CAPTURE(path);
    CHECK(find_asset(path) == nullptr);
  }
}

TEST_CASE("content types follow the extension") {
  for (const Asset& asset : all_assets()) {
    CAPTURE(asset.path);
    const std::string_view extension = extension_of(asset.path);
    if (extension == ".html") {
      CHECK(asset.content_type == "text/html; charset=utf-8");
    } else if (extension == ".css") {
      CHECK(asset.content_type == "text/css; charset=utf-8");
    } else if (extension == ".js") {
      CHECK(asset.content_type == "text/javascript; charset=utf-8");
    } else {
      FAIL("an asset with an extension this test does not know: ", asset.path);
    }
  }
}

TEST_CASE("embedded bodies are the files' bytes: the HTML is a whole document") {
  const Asset* index = find_asset("/index.html");
  REQUIRE(index != nullptr);
  CHECK(index->body.starts_with("<!doctype html>\n"));
  CHECK(index->body.ends_with("</html>\n"));
  CHECK(index->body.find('\0') == std::string_view::npos);
}

TEST_CASE("no page has inline script, event handler or style (CSP default-src 'self')") {
  int pages = 0;
  for (const Asset& asset : all_assets()) {
    if (extension_of(asset.path) != ".html") continue;
    ++pages;
    CAPTURE(asset.path);
    const auto findings = inline_code_in(asset.body);
    for (const auto& finding : findings) MESSAGE(asset.path, ": ", finding);
    CHECK(findings.empty());
    CHECK(asset.body.find("<script type=\"module\" src=\"/") != std::string_view::npos);
  }
  CHECK(pages == 6);
}

TEST_CASE("the inline code finder finds what CSP would block") {
  CHECK(inline_code_in("<p>fine</p><script type=\"module\" src=\"/app.js\"></script>").empty());
  CHECK(inline_code_in("<!-- <script>alert(1)</script> --><p>a comment is no code</p>").empty());
  CHECK(inline_code_in("<input data-on=\"x\" name=online>").empty());

  CHECK(inline_code_in("<script>alert(1)</script>").size() == 1);
  CHECK(inline_code_in("<SCRIPT type=module>import './x.js'</SCRIPT>").size() == 1);
  CHECK(inline_code_in("<script src=\"/a.js\">alert(1)</script>").size() == 1);
  CHECK(inline_code_in("<button onclick=\"go()\">Go</button>").size() == 1);
  CHECK(inline_code_in("<body\nONLOAD='x()'>").size() == 1);
  CHECK(inline_code_in("<img src=x onerror=alert(1)>").size() == 1);
  CHECK(inline_code_in("<p style=\"color:red\">x</p>").size() == 1);
  CHECK(inline_code_in("<style>p{}</style>").size() == 1);
  CHECK(inline_code_in("<a href=\"JavaScript:go()\">x</a>").size() == 1);

  const auto findings = inline_code_in("<p>\n<button onclick=go()>");
  REQUIRE(findings.size() == 1);
  CHECK(findings[0] == "line 2: <button>: an event handler attribute onclick");
}

TEST_CASE("the inline code finder ends on truncated input") {
  for (std::string_view html : {"<", "<script", "<script src=", "<p a=\"", "<!--", "<script src=x>", "<a b c d"}) {
    CAPTURE(html);
    (void)inline_code_in(html);
  }
  CHECK(inline_code_in("<script>").size() == 1);
}

TEST_CASE("the parts are written into every page and are not served themselves") {
  for (const Asset& asset : all_assets()) {
    if (extension_of(asset.path) != ".html") continue;
    CAPTURE(asset.path);
    CHECK(asset.body.find("<!-- include") == std::string_view::npos);
    CHECK(asset.body.find("<meta name=\"viewport\"") != std::string_view::npos);
    CHECK(asset.body.find("<link rel=\"stylesheet\" href=\"/app.css\">") != std::string_view::npos);
    CHECK(asset.body.find("<nav aria-label=\"Main\"") != std::string_view::npos);
    CHECK(asset.body.find("id=\"logout\"") != std::string_view::npos);
  }
  CHECK(find_asset("/head.part.html") == nullptr);
  CHECK(find_asset("/site-header.part.html") == nullptr);
}
