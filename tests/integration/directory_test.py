#!/usr/bin/env python3
"""Directory and profile scenarios (docs/directory.md): real tsunagu-rendezvous and
`tsunagu directory|profile` processes on 127.0.0.1.

Run one scenario:  TSUNAGU_BUILD=build python3 directory_test.py SCENARIO
Each scenario is its own meson test (tests/integration/meson.build); exit 77 = skipped.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
from harness import Deployment, TestFailure, log  # noqa: E402

EXIT_USAGE, EXIT_AUTH = 2, 5
PASSWORD = "directory-pw-1"


def expect(condition, message):
    if not condition:
        raise TestFailure(message)
    log("  ok:", message)


def add(d, user, *fields):
    d.add_user(user, PASSWORD)
    if fields:
        r = d.admin(["user", "-d", d.dir, "profile", user] + list(fields))
        expect(r.code == 0, "admin sets %s's profile %s (%r)" % (user, " ".join(fields), r))


def search(d, asker, args):
    r = d.cli(["directory"] + args + ["--json"], asker, PASSWORD)
    if r.code != 0:
        raise TestFailure("directory %s: %r" % (" ".join(args), r))
    return r.json()


def ids(result):
    return [e["user"] for e in result["entries"]]


def directory_search_published_only():
    d = Deployment()
    d.start_node()
    add(d, "alice", "name=Alice Smith", "publish=yes")
    add(d, "bob", "name=Alice Bob", "publish=no")      # matches the text but is not published
    add(d, "carol", "name=Carol Alison", "publish=yes")
    add(d, "dave", "name=Dave", "publish=yes")
    add(d, "malice", "name=M", "publish=yes")          # the user ID contains "ali"
    login = d.start_login("alice", PASSWORD)
    found = search(d, "dave", ["search", "ALI"])
    expect(ids(found) == ["alice", "carol", "malice"], "case-insensitive substring search finds only published "
           "matches, in user-ID order: %r" % ids(found))
    online = {e["user"]: e["online"] for e in found["entries"]}
    expect(online["alice"] and not online["carol"], "each entry says whether the user is online: %r" % online)
    expect(found["next"] is None, "a single page has no cursor")
    prefix = search(d, "dave", ["search", "ali", "--prefix"])
    expect(ids(prefix) == ["alice", "carol"], "--prefix matches a name, a word of it or a user ID starting with "
           "the text: %r" % ids(prefix))
    text = d.cli(["directory", "search", "smith"], "dave", PASSWORD)
    expect(text.code == 0 and "alice" in text.out and "Alice Smith" in text.out and "online" in text.out,
           "text output names the user, the name and presence: %r" % text.out)
    none = d.cli(["directory", "search", "bob"], "dave", PASSWORD)
    expect(none.code == 0 and "no published match" in none.out, "an unpublished user is not found by name: %r" % none)
    bad = d.cli(["directory", "search", "x" * 65], "dave", PASSWORD)
    expect(bad.code == EXIT_USAGE and "64 bytes" in bad.err, "an over-long query is refused clearly: %r" % bad)
    wrong = d.cli(["directory", "search", "ali"], "dave", "wrong-password-9")
    expect(wrong.code == EXIT_AUTH, "searching needs a login: %r" % wrong)
    login.kill()


def directory_pagination():
    d = Deployment()
    d.start_node()
    published = []
    for i in range(23):
        user = "user%02d" % i
        add(d, user, "name=Page Person %d" % i, "publish=%s" % ("no" if i % 4 == 3 else "yes"))
        if i % 4 != 3:
            published.append(user)
    seen, cursor, pages = [], None, 0
    while True:
        args = ["search", "person", "--limit", "4"] + (["--after", cursor] if cursor else [])
        page = search(d, "user00", args)
        expect(len(page["entries"]) <= 4, "page %d holds at most 4 entries" % pages)
        seen += ids(page)
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
        if pages > 20:
            raise TestFailure("pagination does not end")
    expect(seen == published, "following the cursor returns every published match exactly once, in order "
           "(%d pages): %r" % (pages, seen))
    every = search(d, "user00", ["search", "person", "--limit", "5", "--all"])
    expect(ids(every) == published and every["next"] is None, "--all fetches every page")
    last = search(d, "user00", ["search", "person", "--after", published[-1]])
    expect(last["entries"] == [] and last["next"] is None, "a cursor past the last match gives an empty last page")


def directory_business():
    d = Deployment()
    d.start_node()
    add(d, "kansai-hospital", "name=Kansai Hospital", "category=Hospital", "publish=yes")
    add(d, "north-clinic", "name=North Clinic", "category=hospital", "publish=yes")
    add(d, "hidden-hospital", "name=Hidden", "category=hospital", "publish=no")
    add(d, "yamada-patents", "name=Yamada Patent Office", "category=patent  office", "publish=yes")
    add(d, "erin", "name=Erin", "publish=yes")
    # A user makes themselves a business with their own login.
    r = d.cli(["profile", "set", "category=Patent Office", "publish=yes", "name=Erin Patents"], "erin", PASSWORD)
    expect(r.code == 0 and "patent office" in r.out, "a user sets their own business category: %r" % r)
    hospitals = search(d, "erin", ["business", "HOSPITAL"])
    expect(ids(hospitals) == ["kansai-hospital", "north-clinic"], "business lists published businesses of the "
           "category, case-insensitive: %r" % ids(hospitals))
    patents = search(d, "erin", ["business", "patent office"])
    expect(ids(patents) == ["erin", "yamada-patents"], "categories are folded (case, spaces): %r" % ids(patents))
    r = d.cli(["directory", "categories", "--json"], "erin", PASSWORD)
    expect(r.code == 0, "categories answers: %r" % r)
    expect(r.json() == [{"category": "hospital", "businesses": 2}, {"category": "patent office", "businesses": 2}],
           "categories lists each published category with its count: %r" % r.json())
    r = d.cli(["directory", "business", "bakery"], "erin", PASSWORD)
    expect(r.code == 0 and "no published match" in r.out, "an empty category says so: %r" % r)


def directory_phone_lookup():
    d = Deployment()
    d.start_node()
    add(d, "frank", "name=Frank", "phone=+81-6-1234-0000", "publish=yes")
    add(d, "grace", "name=Grace", "phone=+81-6-9999-0000", "publish=no")
    found = search(d, "frank", ["number", "+81 6 1234 0000"])
    expect(ids(found) == ["frank"], "a phone number resolves to the published user, whatever the punctuation: %r"
           % found)
    hidden = search(d, "frank", ["number", "+81-6-9999-0000"])
    expect(ids(hidden) == [], "an unpublished user's number does not resolve: %r" % hidden)
    bad = d.cli(["directory", "number", "call-me"], "frank", PASSWORD)
    expect(bad.code == EXIT_USAGE and "not a phone number" in bad.err, "a malformed number is refused clearly: %r"
           % bad)


def profile_self_service():
    d = Deployment()
    d.start_node()
    d.add_user("henry", PASSWORD)
    d.add_user("iris", PASSWORD)
    r = d.cli(["profile", "show", "--json"], "henry", PASSWORD)
    # Issue 11: the row also says who may look henry up and whether his private addresses are shown.
    expect(r.code == 0 and r.json() == {"user": "henry", "name": "", "phone": "", "category": "", "publish": False,
                                        "voicemail": False, "presence": "anyone", "contacts": [],
                                        "addresses": False},
           "a new account is unpublished, seen by logged-in users, its private addresses hidden: %r" % r)
    r = d.cli(["profile", "set", "name=Henry Ito", "phone=+81 3 0000 1111", "publish=yes", "voicemail=yes"],
              "henry", PASSWORD)
    expect(r.code == 0 and "Henry Ito" in r.out and "yes (listed" in r.out, "profile set changes one's own row: %r" % r)
    r = d.cli(["profile", "show", "--json"], "henry", PASSWORD)
    expect(r.json()["publish"] and r.json()["voicemail"] and r.json()["phone"] == "+81 3 0000 1111",
           "the change is stored: %r" % r.json())
    found = search(d, "iris", ["search", "henry"])
    expect(ids(found) == ["henry"], "a user who publishes appears in searches")
    r = d.cli(["profile", "set", "publish=no"], "henry", PASSWORD)
    expect(r.code == 0, "unpublishing works")
    expect(ids(search(d, "iris", ["search", "henry"])) == [], "and the user disappears from searches at once")
    for words, needle in ((["publish=maybe"], "say yes or no"), (["phone=call me"], "phone"),
                          (["colour=blue"], "unknown key"), (["name"], "not key=value")):
        r = d.cli(["profile", "set"] + words, "henry", PASSWORD)
        expect(r.code == EXIT_USAGE and needle in r.err, "profile set %s is refused clearly: %r" % (words, r))
    r = d.admin(["user", "-d", d.dir, "profile", "iris", "name=Iris (by admin)", "publish=yes"])
    expect(r.code == 0, "an admin changes anyone's row: %r" % r)
    r = d.admin(["user", "-d", d.dir, "show", "iris"])
    expect("Iris (by admin)" in r.out and "published: yes" in r.out, "user show prints it: %r" % r.out)
    r = d.admin(["user", "-d", d.dir, "profile", "iris", "publish=perhaps"])
    expect(r.code == EXIT_USAGE and "yes or no" in r.err, "the admin command refuses bad input clearly: %r" % r)
    # Restarting the node keeps the rows (they are in LMDB).
    d.node.stop()
    d.start_node()
    r = d.cli(["profile", "show", "--json"], "iris", PASSWORD)
    expect(r.code == 0 and r.json()["name"] == "Iris (by admin)", "profiles survive a restart")


def directory_help_texts():
    for args in (["directory", "--help"], ["directory", "search", "--help"], ["directory", "business", "--help"],
                 ["directory", "categories", "--help"], ["directory", "number", "--help"], ["profile", "--help"],
                 ["profile", "set", "--help"], ["voicemail", "--help"], ["voicemail", "send", "--help"],
                 ["voicemail", "fetch", "--help"]):
        r = h.subprocess.run([h.TERMINAL] + args, capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
        expect(r.returncode == 0 and "Usage" in r.stdout, "tsunagu %s exits 0 with usage" % " ".join(args))
    r = h.subprocess.run([h.TERMINAL, "directory"], capture_output=True, text=True, timeout=h.CLI_TIMEOUT)
    expect(r.returncode == EXIT_USAGE, "tsunagu directory without a subcommand is a usage error")
    r = h.subprocess.run([h.RENDEZVOUS, "user", "profile", "--help"], capture_output=True, text=True,
                         timeout=h.CLI_TIMEOUT)
    expect(r.returncode == 0 and "publish=yes|no" in r.stdout, "tsunagu-rendezvous user profile --help")


SCENARIOS = {
    "directory_search_published_only": directory_search_published_only,
    "directory_pagination": directory_pagination,
    "directory_business": directory_business,
    "directory_phone_lookup": directory_phone_lookup,
    "profile_self_service": profile_self_service,
    "directory_help_texts": directory_help_texts,
}

if __name__ == "__main__":
    sys.exit(h.run_scenarios(SCENARIOS, sys.argv))
