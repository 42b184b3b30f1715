#!/usr/bin/env python3
"""Tests of check_layering.py on a temporary copy of the source folders: the
copy passes as the tree does, and each deliberate breach fails with its
file:line."""
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import check_layering  # noqa: E402


def copy_tree(destination):
    for folder in check_layering.SOURCE_FOLDERS:
        shutil.copytree(ROOT / folder, destination / folder,
                        ignore=lambda _dir, names: [n for n in names if n.endswith(('.o', '.a'))])


def run(root):
    result = subprocess.run([sys.executable, str(HERE / 'check_layering.py'), str(root)],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout


def insert_line(path, after_line, text):
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(after_line, text + '\n')
    path.write_text(''.join(lines))
    return after_line + 1  # the new line's number


def expect(condition, message):
    if not condition:
        raise SystemExit('FAIL: ' + message)


def main():
    with tempfile.TemporaryDirectory(prefix='layering-') as temp:
        root = pathlib.Path(temp)
        copy_tree(root)
        code, output = run(root)
        expect(code == 0, f'the unchanged copy should pass, got {code}:\n{output}')

        # storage/ may include only base/: an include of terminal/ must fail at its line.
        target = root / 'storage' / 'lmdb_store.cpp'
        line = insert_line(target, 2, '#include "terminal/call_runner.hpp"')
        code, output = run(root)
        expect(code == 1, f'an undeclared include should fail, got {code}:\n{output}')
        expect(f'storage/lmdb_store.cpp:{line}: includes "terminal/call_runner.hpp"' in output,
               f'the failure should name storage/lmdb_store.cpp:{line}:\n{output}')
        shutil.copy(ROOT / 'storage' / 'lmdb_store.cpp', target)

        # OpenSSL outside security/.
        target = root / 'proto' / 'stun_message.cpp'
        line = insert_line(target, 1, '#include <openssl/evp.h>')
        code, output = run(root)
        expect(code == 1 and f'proto/stun_message.cpp:{line}: includes <openssl/evp.h>' in output,
               f'OpenSSL in proto/ should fail at line {line}, got {code}:\n{output}')
        shutil.copy(ROOT / 'proto' / 'stun_message.cpp', target)

        # A declaration that closes a cycle (base -> terminal -> ... -> base).
        build = root / 'base' / 'meson.build'
        original = build.read_text()
        build.write_text(original.replace("base_include_folders = []", "base_include_folders = ['terminal']"))
        expect(build.read_text() != original, 'base/meson.build should declare base_include_folders = []')
        code, output = run(root)
        expect(code == 1 and 'cycle' in output, f'a cycle should fail, got {code}:\n{output}')
        build.write_text(original)

        code, output = run(root)
        expect(code == 0, f'the restored copy should pass again, got {code}:\n{output}')
    print('check_layering: passes the tree, fails an undeclared include, OpenSSL outside security/ and a cycle')
    return 0


if __name__ == '__main__':
    sys.exit(main())
