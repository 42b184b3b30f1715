#!/usr/bin/env python3
"""tsunagu-dhcp-hook loads no shared library: no PT_INTERP program header (no
dynamic loader) and no DT_NEEDED entry. dnsmasq execs the hook once per lease
event; the dynamic loader's relocations were two thirds of each exec's CPU
(docs/performance.md, Benchmark 5). Exit 77 (skipped) for the sanitizer and
fuzz builds, which link it dynamically by design (meson says which)."""
import struct
import sys

PT_INTERP, PT_DYNAMIC, DT_NULL, DT_NEEDED = 3, 2, 0, 1


def main():
    path, static_expected = sys.argv[1], sys.argv[2] == "static"
    if not static_expected:
        print("skipped: this build links the hook dynamically (a sanitizer or fuzz build)")
        return 77
    with open(path, "rb") as f:
        data = f.read(64 << 20)
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        print(f"FAIL: {path} is not a 64-bit little-endian ELF file")
        return 1
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    needed = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
            print(f"FAIL: {path} asks for the dynamic loader {interp}")
            return 1
        if p_type == PT_DYNAMIC:
            for at in range(p_offset, p_offset + p_filesz, 16):
                tag, _ = struct.unpack_from("<qQ", data, at)
                if tag == DT_NULL:
                    break
                needed += tag == DT_NEEDED
    if needed:
        print(f"FAIL: {path} names {needed} shared librar{'y' if needed == 1 else 'ies'} (DT_NEEDED)")
        return 1
    print(f"ok: {path} has no dynamic loader and needs no shared library")
    return 0


if __name__ == "__main__":
    sys.exit(main())
