// The web API (rendezvous/web_api.cpp) over a real NodeCore and LMDB store,
// driven the way the daemon will drive it (web_api_harness.hpp): every
// answer here came from the core's own rules, translated.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/unit/rendezvous/web_api_harness.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using namespace tsunagu::rendezvous::testing;
using json = nlohmann::json;

namespace {

json body_of(const WebNode::Answer& answer) {
  json parsed = json::parse(answer.response.body, nullptr, false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), "not JSON: " << answer.response.body);
  return parsed;
}

// Logs in and keeps the cookie and CSRF token in `browser`.
json login(WebNode& node, Browser& browser, const std::string& id, const std::string& password) {
  auto answer = node.log_in(browser, id, password);
  REQUIRE(answer.answered);
  REQUIRE_MESSAGE(answer.response.status == 200, answer.response.body);
  REQUIRE(!browser.cookie.empty());
  REQUIRE(!browser.csrf.empty());
  return body_of(answer);
}

std::string error_code(const WebNode::Answer& answer) { return body_of(answer)["error"].get<std::string>(); }

}  // namespace

TEST_CASE("register, log in: the session cookie's attributes, the CSRF token, log out") {
  WebNode node;
  Browser browser;
  auto registered = node.request(browser, "POST", "/api/register",
                                 json{{"id", "alice"}, {"password", "correct horse"}, {"display_name", "Alice"}}.dump());
  REQUIRE(registered.answered);
  CHECK(registered.response.status == 201);
  CHECK(body_of(registered)["id"] == "alice");
  auto again = node.request(browser, "POST", "/api/register", json{{"id", "alice"}, {"password", "other pass"}}.dump());
  CHECK(again.response.status == 409);
  CHECK(error_code(again) == "conflict");
  auto bad_id = node.request(browser, "POST", "/api/register", json{{"id", "Alice!"}, {"password", "correct horse"}}.dump());
  CHECK(bad_id.response.status == 422);

  auto wrong = node.request(browser, "POST", "/api/login", json{{"id", "alice"}, {"password", "wrong pass"}}.dump());
  CHECK(wrong.response.status == 401);
  CHECK(wrong.header("set-cookie") == nullptr);

  auto answer = node.request(browser, "POST", "/api/login", json{{"id", "alice"}, {"password", "correct horse"}}.dump());
  REQUIRE(answer.response.status == 200);
  const std::string* cookie = answer.header("set-cookie");
  REQUIRE(cookie != nullptr);
  CHECK(cookie->starts_with("tsunagu_session="));
  CHECK(cookie->find("HttpOnly") != std::string::npos);
  CHECK(cookie->find("Secure") != std::string::npos);
  CHECK(cookie->find("SameSite=Strict") != std::string::npos);
  CHECK(cookie->find("Path=/") != std::string::npos);
  std::string token = cookie->substr(std::string("tsunagu_session=").size(), cookie->find(';') - std::string("tsunagu_session=").size());
  CHECK(token.size() == 43);  // 32 bytes, base64url without padding
  json body = body_of(answer);
  CHECK(body["id"] == "alice");
  CHECK(body["display_name"] == "Alice");
  CHECK(body["admin"] == false);
  CHECK(body["voicemail_waiting"] == false);
  CHECK(body["csrf_token"].get<std::string>().size() == 43);
  CHECK(node.api().session_count() == 1);
  // A browser login holds no presence: a query link.
  CHECK(node.core().presence().find("alice") == nullptr);

  browser.cookie = cookie->substr(0, cookie->find(';'));
  browser.csrf = body["csrf_token"].get<std::string>();
  auto session = node.request(browser, "GET", "/api/session");
  CHECK(session.response.status == 200);
  CHECK(body_of(session)["csrf_token"] == browser.csrf);

  Browser forged = browser;
  forged.csrf = std::string(43, 'A');
  CHECK(node.request(forged, "POST", "/api/logout").response.status == 403);
  auto no_token = node.request(browser, "POST", "/api/logout", {}, {}, /*with_csrf=*/false);
  CHECK(no_token.response.status == 403);
  CHECK(error_code(no_token) == "csrf");

  auto out = node.request(browser, "POST", "/api/logout");
  CHECK(out.response.status == 204);
  REQUIRE(out.header("set-cookie") != nullptr);
  CHECK(out.header("set-cookie")->find("Max-Age=0") != std::string::npos);
  CHECK(node.api().session_count() == 0);
  CHECK(node.core().link_count() == 0);  // every web link went back to the core
  auto after = node.request(browser, "GET", "/api/session");
  CHECK(after.response.status == 401);
  CHECK(error_code(after) == "unauthenticated");
}

TEST_CASE("lookup: online, offline with its last seen, unknown is 404, a bad ID is 422") {
  WebNode node;
  node.add_account("alice", "correct horse", false, "Alice");
  node.add_account("bob", "bob's password", false, "Bob");
  Browser browser;
  login(node, browser, "alice", "correct horse");

  node.terminal_login(1, "bob", "bob's password");
  auto online = node.request(browser, "GET", "/api/lookup?id=bob");
  REQUIRE(online.response.status == 200);
  json body = body_of(online);
  CHECK(body["state"] == "online");
  CHECK(body["display_name"] == "Bob");
  CHECK(body["voicemail"] == false);
  CHECK(body.contains("last_seen"));

  node.advance_ms(5000);
  node.terminal_gone(1);
  auto offline = node.request(browser, "GET", "/api/lookup?id=bob");
  REQUIRE(offline.response.status == 200);  // the core's 480, as a state
  body = body_of(offline);
  CHECK(body["state"] == "offline");
  CHECK(body["display_name"] == "Bob");
  CHECK(body["last_seen"] == node.now().unix_s);

  auto unknown = node.request(browser, "GET", "/api/lookup?id=nobody");
  CHECK(unknown.response.status == 404);
  CHECK(error_code(unknown) == "not_found");
  auto invalid = node.request(browser, "GET", "/api/lookup?id=Not%20An%20ID");
  CHECK(invalid.response.status == 422);
  CHECK(node.request(browser, "GET", "/api/lookup").response.status == 400);
  CHECK(node.request(Browser{}, "GET", "/api/lookup?id=bob").response.status == 401);
}

TEST_CASE("directory: a published profile is found by name and by category") {
  WebNode node;
  node.add_account("alice", "correct horse");
  node.add_account("bakery", "bread and butter");
  Browser alice, shop;
  login(node, alice, "alice", "correct horse");
  login(node, shop, "bakery", "bread and butter");
  auto published = node.request(shop, "PUT", "/api/profile",
                                json{{"display_name", "Sunrise Bakery"}, {"category", "Food"}, {"publish", true}}.dump());
  REQUIRE_MESSAGE(published.response.status == 200, published.response.body);

  auto found = node.request(alice, "GET", "/api/directory?q=sunrise");
  REQUIRE(found.response.status == 200);
  json body = body_of(found);
  REQUIRE(body["entries"].size() == 1);
  CHECK(body["entries"][0]["id"] == "bakery");
  CHECK(body["entries"][0]["display_name"] == "Sunrise Bakery");
  CHECK(body["entries"][0]["category"] == "food");

  auto business = node.request(alice, "GET", "/api/directory?q=food&kind=business");
  REQUIRE(business.response.status == 200);
  CHECK(body_of(business)["entries"].size() == 1);
  auto categories = node.request(alice, "GET", "/api/directory/categories");
  REQUIRE(categories.response.status == 200);
  CHECK(body_of(categories)["categories"] == json::parse(R"([{"name":"food","count":1}])"));
  CHECK(node.request(alice, "GET", "/api/directory?q=x&kind=colour").response.status == 400);
}

TEST_CASE("profile: get, put a subset, and the core's checks come back as 400") {
  WebNode node;
  node.add_account("alice", "correct horse", false, "Alice");
  Browser browser;
  login(node, browser, "alice", "correct horse");
  auto got = node.request(browser, "GET", "/api/profile");
  REQUIRE(got.response.status == 200);
  json body = body_of(got);
  CHECK(body["display_name"] == "Alice");
  CHECK(body["presence_visibility"] == "anyone");
  CHECK(body["contacts"] == json::array());

  auto put = node.request(browser, "PUT", "/api/profile",
                          json{{"phone", "+81-6-1234-0000"}, {"presence_visibility", "contacts"}, {"contacts", {"bob", "carol"}}}.dump());
  REQUIRE_MESSAGE(put.response.status == 200, put.response.body);
  body = body_of(put);
  CHECK(body["phone"] == "+81-6-1234-0000");
  CHECK(body["presence_visibility"] == "contacts");
  CHECK(body["contacts"] == json{"bob", "carol"});
  CHECK(body["display_name"] == "Alice");  // untouched

  auto bad_phone = node.request(browser, "PUT", "/api/profile", json{{"phone", "call me"}}.dump());
  CHECK(bad_phone.response.status == 400);
  auto wrong_type = node.request(browser, "PUT", "/api/profile", json{{"publish", "yes"}}.dump());
  CHECK(wrong_type.response.status == 400);
  CHECK(body_of(wrong_type)["message"].get<std::string>().find("publish") != std::string::npos);
  auto unknown = node.request(browser, "PUT", "/api/profile", json{{"colour", "blue"}}.dump());
  CHECK(unknown.response.status == 400);
  auto nothing = node.request(browser, "PUT", "/api/profile", "{}");
  CHECK(nothing.response.status == 400);
  // Refusals of the core's checks do not count against the link: the session lives on.
  for (int i = 0; i < 10; ++i)
    CHECK(node.request(browser, "PUT", "/api/profile", json{{"display_name", std::string(15'000, 'x')}}.dump()).response.status == 400);
  CHECK(node.request(browser, "GET", "/api/profile").response.status == 200);
}

TEST_CASE("voicemail: upload in chunks, list, fetch the same bytes, delete") {
  WebNode node;
  node.add_account("alice", "correct horse");
  node.add_account("carol", "carol's password");
  Browser alice, carol;
  login(node, alice, "alice", "correct horse");
  login(node, carol, "carol", "carol's password");
  REQUIRE(node.request(carol, "PUT", "/api/profile", json{{"voicemail", true}}.dump()).response.status == 200);

  std::string recording = "OggS";
  for (int i = 0; recording.size() < 20'000; ++i) recording.push_back(static_cast<char>(i * 7));
  auto wrong_type = node.request(alice, "POST", "/api/voicemail?to=carol", recording, "text/plain");
  CHECK(wrong_type.response.status == 415);
  auto to_nobody = node.request(alice, "POST", "/api/voicemail?to=nobody", recording, "audio/ogg");
  CHECK(to_nobody.response.status == 404);
  auto uploaded = node.request(alice, "POST", "/api/voicemail?to=carol", recording, "audio/ogg");
  REQUIRE_MESSAGE(uploaded.response.status == 201, uploaded.response.body);

  Browser fresh;  // a new login (another browser) says it waits
  CHECK(login(node, fresh, "carol", "carol's password")["voicemail_waiting"] == true);
  auto listed = node.request(carol, "GET", "/api/voicemail");
  REQUIRE(listed.response.status == 200);
  json messages = body_of(listed)["messages"];
  REQUIRE(messages.size() == 1);
  CHECK(messages[0]["from"] == "alice");
  CHECK(messages[0]["size"] == recording.size());
  uint64_t id = messages[0]["id"].get<uint64_t>();

  auto fetched = node.request(carol, "GET", "/api/voicemail/" + std::to_string(id));
  REQUIRE(fetched.response.status == 200);
  CHECK(fetched.response.body == recording);
  REQUIRE(fetched.header("content-type") != nullptr);
  CHECK(*fetched.header("content-type") == "audio/ogg");
  // Alice's mailbox is hers: carol's message is not there.
  CHECK(node.request(alice, "GET", "/api/voicemail/" + std::to_string(id)).response.status == 404);

  // A subscribed session hears of a new message as soon as it is stored.
  std::vector<std::string> events;
  auto carol_session = node.session_of(carol);
  REQUIRE(carol_session.has_value());
  node.api().subscribe(*carol_session, [&](std::string event) { events.push_back(std::move(event)); }, node.now());
  node.pump();
  node.advance_ms(30'000);
  node.tick();
  CHECK(events.empty());  // the message above was listed already
  // A message for someone else is no news for carol.
  REQUIRE(node.request(alice, "PUT", "/api/profile", json{{"voicemail", true}}.dump()).response.status == 200);
  REQUIRE(node.request(carol, "POST", "/api/voicemail?to=alice", "OggS for alice", "audio/ogg").response.status == 201);
  CHECK(events.empty());
  REQUIRE(node.request(alice, "POST", "/api/voicemail?to=carol", "OggS second", "audio/ogg").response.status == 201);
  REQUIRE(events.size() == 1);
  CHECK(events[0] == R"({"type":"voicemail_waiting"})");
  node.api().unsubscribe(*carol_session);

  CHECK(node.request(carol, "DELETE", "/api/voicemail/" + std::to_string(id)).response.status == 204);
  CHECK(node.request(carol, "DELETE", "/api/voicemail/" + std::to_string(id)).response.status == 404);
  CHECK(body_of(node.request(carol, "GET", "/api/voicemail"))["messages"].size() == 1);  // the second
}

TEST_CASE("voicemail list: 64 at a time, ?after= the cursor the last page gave") {
  NodeSettings settings = web_test_settings();
  settings.voicemail_sender_messages_per_day = 100;
  WebNode node(settings);
  node.add_account("alice", "correct horse");
  node.add_account("carol", "carol's password");
  Browser alice, carol;
  login(node, alice, "alice", "correct horse");
  login(node, carol, "carol", "carol's password");
  REQUIRE(node.request(carol, "PUT", "/api/profile", json{{"voicemail", true}}.dump()).response.status == 200);
  for (int i = 0; i < 70; ++i)
    REQUIRE(node.request(alice, "POST", "/api/voicemail?to=carol", "OggS " + std::to_string(i), "audio/ogg").response.status == 201);
  json first = body_of(node.request(carol, "GET", "/api/voicemail"));
  REQUIRE(first["messages"].size() == 64);
  REQUIRE(first.contains("next_after"));
  CHECK(first["next_after"] == first["messages"][63]["id"]);
  json second = body_of(node.request(carol, "GET", "/api/voicemail?after=" + std::to_string(first["next_after"].get<uint64_t>())));
  REQUIRE(second["messages"].size() == 6);
  CHECK_FALSE(second.contains("next_after"));
  CHECK(second["messages"][0]["id"].get<uint64_t>() > first["next_after"].get<uint64_t>());
  auto bad = node.request(carol, "GET", "/api/voicemail?after=latest");
  CHECK(bad.response.status == 400);
  CHECK(error_code(bad) == "bad_request");
}

TEST_CASE("admin: a non-admin gets 403; an admin adds, lists, verifies and removes, and the removal ends the sessions") {
  WebNode node;
  node.add_account("root", "admin password", /*admin=*/true);
  node.add_account("bob", "bob's password");
  Browser root, bob;
  CHECK(login(node, root, "root", "admin password")["admin"] == true);
  CHECK(login(node, bob, "bob", "bob's password")["admin"] == false);
  auto refused = node.request(bob, "GET", "/api/admin/users");
  CHECK(refused.response.status == 403);
  CHECK(error_code(refused) == "forbidden");

  auto added = node.request(root, "POST", "/api/admin/users",
                            json{{"id", "dave"}, {"password", "dave's password"}, {"display_name", "Dave"}, {"admin", false}}.dump());
  REQUIRE_MESSAGE(added.response.status == 201, added.response.body);
  CHECK(node.request(root, "POST", "/api/admin/users", json{{"id", "dave"}, {"password", "x-password"}}.dump()).response.status == 409);
  CHECK(node.request(root, "POST", "/api/admin/users", json{{"id", "eve"}, {"password", "x-password"}, {"admin", "yes"}}.dump()).response.status == 400);
  auto listed = node.request(root, "GET", "/api/admin/users?q=dav");
  REQUIRE(listed.response.status == 200);
  REQUIRE(body_of(listed)["users"].size() == 1);
  CHECK(body_of(listed)["users"][0]["display_name"] == "Dave");
  CHECK(node.request(root, "POST", "/api/admin/users/dave/verify").response.status == 204);
  CHECK(read_account(node.store(), "dave")->verified);
  CHECK(node.request(root, "POST", "/api/admin/users/nobody/verify").response.status == 404);
  CHECK(node.request(root, "POST", "/api/admin/users/dave/password", json{{"password", "new dave pass"}}.dump()).response.status == 204);
  Browser dave;
  login(node, dave, "dave", "new dave pass");
  CHECK(node.request(root, "GET", "/api/admin/agents").response.status == 200);
  CHECK(body_of(node.request(root, "GET", "/api/admin/calls"))["in_progress"] == 0);
  CHECK(body_of(node.request(root, "GET", "/api/admin/voicemail"))["messages"] == 0);

  std::vector<std::string> events;
  auto bob_session = node.api().session_of([&] {
    web::HttpRequest r;
    r.headers.add("cookie", bob.cookie);
    return r;
  }(), node.now());
  REQUIRE(bob_session.has_value());
  node.api().subscribe(*bob_session, [&](std::string event) { events.push_back(std::move(event)); }, node.now());
  node.pump();
  CHECK(node.request(root, "DELETE", "/api/admin/users/bob").response.status == 204);
  node.advance_ms(1000);
  node.tick();  // the core's account check sees the epoch move and ends bob's link
  CHECK(node.request(bob, "GET", "/api/session").response.status == 401);
  REQUIRE(!events.empty());
  CHECK(events.back() == R"({"type":"session_ended"})");
  CHECK(node.request(root, "GET", "/api/session").response.status == 200);
  CHECK(node.request(root, "DELETE", "/api/admin/users/bob").response.status == 404);
  // Taking the role away holds at once.
  CHECK(node.request(root, "POST", "/api/admin/users/dave/admin", json{{"admin", true}}.dump()).response.status == 204);
  CHECK(node.request(dave, "GET", "/api/admin/users").response.status == 200);
  REQUIRE(set_admin(node.store(), "dave", false).has_value());
  CHECK(node.request(dave, "GET", "/api/admin/users").response.status == 403);
}

TEST_CASE("events: a contact's presence follows on the event socket, within the contact's visibility") {
  WebNode node;
  node.add_account("alice", "correct horse");
  node.add_account("bob", "bob's password");
  node.add_account("carol", "carol's password");
  Browser alice;
  login(node, alice, "alice", "correct horse");
  auto put = node.request(alice, "PUT", "/api/profile", json{{"contacts", {"bob", "carol", "4106@acme"}}}.dump());
  REQUIRE_MESSAGE(put.response.status == 200, put.response.body);
  std::vector<json> events;
  auto session = node.session_of(alice);
  REQUIRE(session.has_value());
  node.api().subscribe(*session, [&](std::string event) { events.push_back(json::parse(event)); }, node.now());
  node.pump();
  // Subscribing tells the state of every contact with a presence (not the extension).
  REQUIRE(events.size() == 2);
  CHECK(events[0] == json{{"type", "presence"}, {"id", "bob"}, {"state", "offline"}});
  CHECK(events[1] == json{{"type", "presence"}, {"id", "carol"}, {"state", "offline"}});
  events.clear();

  node.terminal_login(1, "bob", "bob's password");
  REQUIRE(events.size() == 1);
  CHECK(events[0] == json{{"type", "presence"}, {"id", "bob"}, {"state", "online"}});
  node.terminal_gone(1);
  REQUIRE(events.size() == 2);
  CHECK(events[1] == json{{"type", "presence"}, {"id", "bob"}, {"state", "offline"}});
  events.clear();

  // Carol shows her presence to nobody: her login is no event for alice.
  Browser carol;
  login(node, carol, "carol", "carol's password");
  REQUIRE(node.request(carol, "PUT", "/api/profile", json{{"presence_visibility", "nobody"}}.dump()).response.status == 200);
  node.terminal_login(2, "carol", "carol's password");
  REQUIRE(events.size() == 1);
  CHECK(events[0] == json{{"type", "presence"}, {"id", "carol"}, {"state", "unknown"}});
  events.clear();

  // A user who is not a contact is never looked up for alice.
  node.add_account("dave", "dave's password");
  node.terminal_login(3, "dave", "dave's password");
  CHECK(events.empty());
  // Dropping bob from the contacts stops his events; nothing is sent for the change itself.
  REQUIRE(node.request(alice, "PUT", "/api/profile", json{{"contacts", {"carol"}}}.dump()).response.status == 200);
  node.terminal_login(4, "bob", "bob's password");
  CHECK(events.empty());
  node.api().unsubscribe(*session);
  node.terminal_gone(4);
  CHECK(events.empty());
}

TEST_CASE("sessions: idle and too old sessions answer 401; a live one outlasts the core's idle timeout") {
  WebApiSettings web;
  web.session_idle_s = 300;
  web.session_max_s = 900;
  WebNode node(web_test_settings(), web);
  node.add_account("alice", "correct horse");
  Browser browser;
  login(node, browser, "alice", "correct horse");
  // 4 minutes with a request every 100 s: the core's 120 s idle timeout
  // would have closed a silent query link; the keepalives keep it.
  for (int i = 0; i < 24; ++i) {
    node.advance_ms(10'000);
    node.tick();
    if (i % 10 == 9) REQUIRE(node.request(browser, "GET", "/api/session").response.status == 200);
  }
  CHECK(node.request(browser, "GET", "/api/session").response.status == 200);
  for (int i = 0; i < 31; ++i) {
    node.advance_ms(10'000);
    node.tick();
  }
  CHECK(node.api().session_count() == 0);  // idle 310 s
  CHECK(node.request(browser, "GET", "/api/session").response.status == 401);

  login(node, browser, "alice", "correct horse");
  for (int i = 0; i < 9; ++i) {
    node.advance_ms(100'000);
    node.tick();
    if (i < 8) REQUIRE(node.request(browser, "GET", "/api/profile").response.status == 200);
  }
  CHECK(node.request(browser, "GET", "/api/profile").response.status == 401);  // 900 s after login
}

TEST_CASE("bad input: malformed JSON, wrong types, wrong content type, oversized bodies, unknown endpoints") {
  WebNode node;
  Browser browser;
  auto malformed = node.request(browser, "POST", "/api/login", "{\"id\": \"alice\",");
  CHECK(malformed.response.status == 400);
  CHECK(error_code(malformed) == "bad_request");
  CHECK(node.request(browser, "POST", "/api/login", "[1,2]").response.status == 400);
  auto wrong_type = node.request(browser, "POST", "/api/login", json{{"id", 42}, {"password", "x"}}.dump());
  CHECK(wrong_type.response.status == 400);
  CHECK(body_of(wrong_type)["message"] == "\"id\" must be a string");
  // Each field of a form is checked, the later ones too.
  auto wrong_final = node.request(browser, "POST", "/api/login", json{{"exchange", "e"}, {"client_final", 7}}.dump());
  CHECK(body_of(wrong_final)["message"] == "\"client_final\" must be a string");
  auto wrong_name = node.request(browser, "POST", "/api/register",
                                 json{{"id", "zed"}, {"credentials", "c"}, {"display_name", false}}.dump());
  CHECK(wrong_name.response.status == 400);
  CHECK(body_of(wrong_name)["message"] == "\"display_name\" must be a string");
  auto form = node.request(browser, "POST", "/api/login", "id=alice&password=x", "application/x-www-form-urlencoded");
  CHECK(form.response.status == 415);
  CHECK(error_code(form) == "unsupported_media_type");
  auto huge = node.request(browser, "POST", "/api/register", "\"" + std::string(20'000, 'a') + "\"");
  CHECK(huge.response.status == 413);
  // A body under the JSON limit whose request would not fit in one protocol
  // message is refused before the core sees it (the core would count it malformed).
  auto too_big = node.request(browser, "POST", "/api/register",
                              json{{"id", "a"}, {"password", std::string(16'350, 'p')}}.dump());
  CHECK(too_big.response.status == 413);
  CHECK(error_code(too_big) == "payload_too_large");
  CHECK(node.request(browser, "GET", "/api/nothing-here").response.status == 404);
  CHECK(node.request(browser, "GET", "/api/login").response.status == 405);
  CHECK(node.core().link_count() == 0);  // nothing opened for refused requests
}

TEST_CASE("login limiter: the core's 429 comes back with Retry-After") {
  WebNode node;
  node.add_account("alice", "correct horse");
  Browser browser;
  WebNode::Answer answer;
  for (int i = 0; i < 10; ++i) {
    answer = node.request(browser, "POST", "/api/login", json{{"id", "alice"}, {"password", "guess " + std::to_string(i)}}.dump());
    if (answer.response.status == 429) break;
    CHECK(answer.response.status == 401);
  }
  REQUIRE(answer.response.status == 429);
  CHECK(error_code(answer) == "too_many_requests");
  REQUIRE(answer.header("retry-after") != nullptr);
  CHECK(std::stoi(*answer.header("retry-after")) >= 1);
  // The right password is refused too until then: the limiter is the core's.
  CHECK(node.request(browser, "POST", "/api/login", json{{"id", "alice"}, {"password", "correct horse"}}.dump()).response.status == 429);
  CHECK(node.core().link_count() == 0);
}

TEST_CASE("register on a node with closed registration is 403; web links are in the reserved range") {
  NodeSettings settings = web_test_settings();
  settings.open_registration = false;
  WebNode node(settings);
  Browser browser;
  auto closed = node.request(browser, "POST", "/api/register", json{{"id", "alice"}, {"password", "correct horse"}}.dump());
  CHECK(closed.response.status == 403);
  CHECK(error_code(closed) == "forbidden");
  CHECK(node.core().link_count() == 0);
  CHECK(node.api().owns_link(WebApi::link_range_bit | 1));
  CHECK_FALSE(node.api().owns_link(1));
  // Admin endpoints without a session: 401 before anything else.
  CHECK(node.request(browser, "GET", "/api/admin/users").response.status == 401);
}

TEST_CASE("admin: each change asked through the admin endpoints is an audit event, done or refused; reads are not") {
  WebNode node;
  audit::RecordingAuditSink sink;
  node.core().set_audit_sink(sink);
  node.add_account("root", "admin password", /*admin=*/true);
  node.add_account("bob", "bob's password");
  Browser root, bob;
  login(node, root, "root", "admin password");
  login(node, bob, "bob", "bob's password");
  sink.events.clear();
  CHECK(node.request(root, "POST", "/api/admin/users",
                     json{{"id", "dave"}, {"password", "dave's password"}}.dump()).response.status == 201);
  CHECK(node.request(root, "POST", "/api/admin/users", json{{"id", "dave"}, {"password", "x-password"}}.dump())
            .response.status == 409);
  CHECK(node.request(root, "GET", "/api/admin/users").response.status == 200);
  CHECK(node.request(bob, "DELETE", "/api/admin/users/root").response.status == 403);
  CHECK(node.request(root, "DELETE", "/api/admin/users/dave").response.status == 204);
  std::vector<std::string> lines;
  for (const auto& e : sink.events)
    if (e.event == "admin") lines.push_back(audit::format_audit_line(e));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "event=admin via=web by=root source=203.0.113.7:51234 action=user_add target=dave result=ok status=201");
  CHECK(lines[1] == "event=admin via=web by=root source=203.0.113.7:51234 action=user_add target=dave result=failed status=409");
  CHECK(lines[2] == "event=admin via=web by=bob source=203.0.113.7:51234 action=forbidden target=/api/admin/users/root result=failed status=403");
  CHECK(lines[3] == "event=admin via=web by=root source=203.0.113.7:51234 action=user_remove target=dave result=ok status=204");
  for (const auto& line : lines) CHECK(line.find("password") == std::string::npos);
}

TEST_CASE("web SCRAM: register with page-derived credentials, log in by proof; the node proves itself; no password sent") {
  namespace scram = security::scram;
  WebNode node;
  Browser browser;
  std::string credentials = scram::stored_credentials("correct horse", scram::min_iterations);
  auto registered = node.request(browser, "POST", "/api/register",
                                 json{{"id", "carol"}, {"credentials", credentials}}.dump());
  REQUIRE_MESSAGE(registered.response.status == 201, registered.response.body);
  const std::string nonce = "page-nonce-0123456789";
  std::string bare = scram::build_client_first_bare("carol", nonce);
  auto begun = node.request(browser, "POST", "/api/login/begin", json{{"client_first", "n,," + bare}}.dump());
  REQUIRE_MESSAGE(begun.response.status == 200, begun.response.body);
  json begin_body = body_of(begun);
  std::string server_first = begin_body["server_first"].get<std::string>();
  auto parsed = scram::parse_server_first(server_first);
  REQUIRE(parsed.has_value());
  Bytes salted = scram::salted_password("correct horse", parsed->salt, parsed->iterations);
  std::string without_proof = scram::build_client_final_without_proof(parsed->nonce);
  std::string auth = scram::auth_message(bare, server_first, without_proof);
  std::string client_final = scram::build_client_final(parsed->nonce, scram::client_proof(salted, auth));
  auto answer = node.request(browser, "POST", "/api/login",
                             json{{"exchange", begin_body["exchange"]}, {"client_final", client_final}}.dump());
  REQUIRE_MESSAGE(answer.response.status == 200, answer.response.body);
  json body = body_of(answer);
  CHECK(body["id"] == "carol");
  auto server_final = scram::parse_server_final(body["server_final"].get<std::string>());
  REQUIRE(server_final.has_value());
  CHECK(scram::verify_server_signature(salted, auth, server_final->verifier));
  CHECK(answer.header("set-cookie") != nullptr);
  CHECK(node.api().session_count() == 1);

  // The exchange was single use.
  auto replay = node.request(browser, "POST", "/api/login",
                             json{{"exchange", begin_body["exchange"]}, {"client_final", client_final}}.dump());
  CHECK(replay.response.status == 401);

  // A wrong password's proof is 401, without server_final.
  auto begun_again = node.request(browser, "POST", "/api/login/begin", json{{"client_first", "n,," + bare}}.dump());
  json again_body = body_of(begun_again);
  std::string first_again = again_body["server_first"].get<std::string>();
  auto parsed_again = scram::parse_server_first(first_again);
  REQUIRE(parsed_again.has_value());
  Bytes wrong = scram::salted_password("wrong horse", parsed_again->salt, parsed_again->iterations);
  std::string auth_again =
      scram::auth_message(bare, first_again, scram::build_client_final_without_proof(parsed_again->nonce));
  auto refused = node.request(
      browser, "POST", "/api/login",
      json{{"exchange", again_body["exchange"]},
           {"client_final", scram::build_client_final(parsed_again->nonce, scram::client_proof(wrong, auth_again))}}
          .dump());
  CHECK(refused.response.status == 401);
  CHECK_FALSE(body_of(refused).contains("server_final"));
}

TEST_CASE("web SCRAM: credentials weaker than the node's, or malformed, are refused at register") {
  namespace scram = security::scram;
  WebNode node;
  Browser browser;
  scram::ServerCredentials made = scram::make_credentials("correct horse", scram::min_iterations);
  made.iterations = scram::min_iterations;  // the harness's node makes min_iterations: equal is fine
  CHECK(node.request(browser, "POST", "/api/register",
                     json{{"id", "dave"}, {"credentials", scram::encode_credentials(made)}}.dump())
            .response.status == 201);
  CHECK(node.request(browser, "POST", "/api/register", json{{"id", "erin"}, {"credentials", "$scram-sha256$i=1$x"}}.dump())
            .response.status == 400);
}

TEST_CASE("admin: passwords set through the web follow passwords.scram_iterations across a reload") {
  WebNode node;
  node.add_account("root", "admin password", /*admin=*/true);
  Browser root;
  REQUIRE(login(node, root, "root", "admin password")["admin"] == true);
  auto iterations_of = [&](const std::string& user) -> uint32_t {
    auto txn = node.store().begin_read();
    REQUIRE(txn);
    auto account = node.store().find(*txn, user);
    REQUIRE(account);
    REQUIRE(account->has_value());
    auto credentials = security::scram::decode_credentials((*account)->password_hash);
    REQUIRE(credentials.has_value());
    return credentials->iterations;
  };
  auto added = node.request(root, "POST", "/api/admin/users", json{{"id", "dave"}, {"password", "dave's password"}}.dump());
  REQUIRE_MESSAGE(added.response.status == 201, added.response.body);
  CHECK(iterations_of("dave") == security::scram::min_iterations);

  NodeSettings next = web_test_settings();
  next.scram_iterations = security::scram::min_iterations + 904;
  CHECK(node.core().reload_settings(next).empty());
  auto carol = node.request(root, "POST", "/api/admin/users", json{{"id", "carol"}, {"password", "carol's password"}}.dump());
  REQUIRE_MESSAGE(carol.response.status == 201, carol.response.body);
  CHECK(iterations_of("carol") == security::scram::min_iterations + 904);
  auto reset = node.request(root, "POST", "/api/admin/users/dave/password", json{{"password", "dave's new password"}}.dump());
  REQUIRE_MESSAGE(reset.response.status == 204, reset.response.body);
  CHECK(iterations_of("dave") == security::scram::min_iterations + 904);
}

TEST_CASE("display names others are shown: controls and bidirectional overrides refused at register and admin add") {
  WebNode node;
  node.add_account("root", "admin password", /*admin=*/true);
  Browser browser, root;
  login(node, root, "root", "admin password");
  // U+202E makes "alice" of "ecila" on screen; U+009B is a C1 CSI some terminals obey; U+2066 an isolate.
  for (const char* name : {"\u202e" "ecila", "a\u009b" "2J", "x\u2066y", "a\x7f" "b"}) {
    auto registered = node.request(browser, "POST", "/api/register",
                                   json{{"id", "mallory"}, {"password", "correct horse"}, {"display_name", name}}.dump());
    CHECK_MESSAGE(registered.response.status == 400, registered.response.body);
    auto added = node.request(root, "POST", "/api/admin/users",
                              json{{"id", "mallory"}, {"password", "correct horse"}, {"display_name", name}}.dump());
    CHECK_MESSAGE(added.response.status == 400, added.response.body);
  }
  auto kept = node.request(browser, "POST", "/api/register",
                           json{{"id", "zoe"}, {"password", "correct horse"}, {"display_name", "Zoë 青木 👩‍💻"}}.dump());
  CHECK_MESSAGE(kept.response.status == 201, kept.response.body);
}

TEST_CASE("a JSON body naming a key twice is refused, at any depth") {
  WebNode node;
  Browser browser;
  auto twice = node.request(browser, "POST", "/api/register",
                            R"({"id":"x","password":"correct horse","id":"y"})");
  CHECK(twice.response.status == 400);
  CHECK(body_of(twice)["message"] == "the body names a key twice");
  auto nested = node.request(browser, "POST", "/api/register",
                             R"({"id":"x","password":"correct horse","extra":{"a":1,"a":2}})");
  CHECK(nested.response.status == 400);
  // The same key in two sibling objects is not a repeat.
  auto siblings = node.request(browser, "POST", "/api/register",
                               R"({"id":"x","password":"correct horse","p":{"a":1},"q":{"a":2}})");
  CHECK_MESSAGE(siblings.response.status == 201, siblings.response.body);
}
