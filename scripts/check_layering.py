#!/usr/bin/env python3
"""Fails when a source folder includes a folder its meson.build does not declare.

Every source folder's meson.build has one line (a list may span lines)

    <folder>_include_folders = ['base', 'proto']

naming the folders its sources may #include "folder/...". This script reads
those declarations, scans every .cpp/.hpp of each folder, and prints
file:line for each include of an undeclared folder, and for each OpenSSL
include outside security/ (security/ is the one adapter to OpenSSL). It also
fails when the declarations form a cycle, so dependencies stay one way.

    python3 scripts/check_layering.py [repository root]
"""
import pathlib
import re
import sys

SOURCE_FOLDERS = ['base', 'storage', 'proto', 'security', 'transport', 'web',
                  'media', 'webrtc', 'audio', 'allocation', 'rendezvous', 'lan-agent', 'terminal', 'pages',
                  'cards', 'ops', 'cluster/pg', 'cluster/redis', 'node']

# Includes that break the declared graph today and are being removed; each is
# (including file, included path). Keyed by path, not line, so edits nearby do
# not matter; a stale entry is reported so it gets deleted.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()

DECLARATION = re.compile(r'^\s*(\w+)_include_folders\s*=\s*\[([^\]]*)\]', re.M)
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def declared_folders(root, folder):
    build = root / folder / 'meson.build'
    if not build.exists():
        raise SystemExit(f'{build}: missing')
    text = build.read_text()
    expected = folder.replace('-', '_').replace('/', '_')
    for match in DECLARATION.finditer(text):
        if match.group(1) == expected:
            return set(re.findall(r"'([^']+)'", match.group(2)))
    raise SystemExit(f'{build}: no "{expected}_include_folders = [...]" declaration')


def source_folder_of(included):
    """The source folder an include path names ('cluster/pg' for
    "cluster/pg/x.hpp"), the longest that matches; None for another path."""
    matches = [f for f in SOURCE_FOLDERS if included.startswith(f + '/')]
    return max(matches, key=len) if matches else None


def find_cycle(graph):
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return path + [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [node])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def check(root):
    root = pathlib.Path(root).resolve()
    problems = []
    graph = {}
    for folder in SOURCE_FOLDERS:
        allowed = declared_folders(root, folder)
        unknown = allowed - set(SOURCE_FOLDERS)
        if unknown:
            problems.append(f'{folder}/meson.build: declares unknown folders {sorted(unknown)}')
        graph[folder] = allowed - {folder}
    cycle = find_cycle(graph)
    if cycle:
        problems.append('declared dependencies form a cycle: ' + ' -> '.join(cycle))

    used_exceptions = set()
    for folder in SOURCE_FOLDERS:
        for path in sorted((root / folder).rglob('*')):
            if path.suffix not in ('.cpp', '.hpp', '.h', '.cc'):
                continue
            relative = path.relative_to(root).as_posix()
            for number, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
                match = INCLUDE.match(line)
                if not match:
                    continue
                bracket, included = match.groups()
                if bracket == '<':
                    if included.startswith('openssl/') and folder != 'security':
                        problems.append(f'{relative}:{number}: includes <{included}>; '
                                        'only security/ includes OpenSSL')
                    continue
                target = source_folder_of(included)
                if target is None or target == folder:
                    continue
                if target in graph[folder]:
                    continue
                if (relative, included) in KNOWN_EXCEPTIONS:
                    used_exceptions.add((relative, included))
                    continue
                problems.append(f'{relative}:{number}: includes "{included}" but {folder}/meson.build '
                                f'declares only {sorted(graph[folder])}')
    for stale in sorted(KNOWN_EXCEPTIONS - used_exceptions):
        print(f'note: known exception {stale[0]} -> {stale[1]} no longer occurs; remove it from '
              f'{pathlib.Path(__file__).name}')
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f'layering: {len(problems)} include(s) against the declared folder dependencies')
        return 1
    print(f'layering: every include of {len(SOURCE_FOLDERS)} folders follows their declared dependencies')
    return 0


if __name__ == '__main__':
    sys.exit(main())
