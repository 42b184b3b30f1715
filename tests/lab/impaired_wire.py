#!/usr/bin/env python3
"""An impaired cable between two network namespaces, in user space: netem's
loss, delay and jitter for kernels without sch_netem (this machine's has
neither netem nor NFQUEUE, so `tc qdisc ... netem` fails with "Specified qdisc
kind is unknown").

Two TAP devices stand for the cable's two ends. This process creates both in
the namespace it runs in (`ip netns exec A`), says READY on stdout, and the lab
moves the second into namespace B (a TAP's file descriptor stays attached when
its device changes namespace). Every Ethernet frame read from one end is
written to the other after `delay` ms plus a uniform jitter in [-jitter,
+jitter] ms (so, like netem, frames can be reordered), or dropped with
probability `loss` percent, from a seeded generator: the same seed drops the
same frames. ARP is never dropped or delayed, so neighbours resolve at once.
Counts go to stderr when it stops (SIGTERM).

    impaired_wire.py NAME_A NAME_B --loss 5 --delay 30 --jitter 10 --seed 1

Python 3 standard library only.
"""

import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ARP = 0x0806
MAX_FRAME = 65536


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name_a")
    parser.add_argument("name_b")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of frames dropped, each way")
    parser.add_argument("--delay", type=float, default=0.0, help="ms added to every frame")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms, uniform in [-jitter, +jitter]")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.jitter > args.delay:
        parser.error("--jitter must not exceed --delay")

    ends = [open_tap(args.name_a), open_tap(args.name_b)]
    rng = random.Random(args.seed)
    pending = []  # (due, sequence, fd, frame)
    sequence = 0
    counts = {"forwarded": 0, "dropped": 0, "reordered": 0}
    last_due = {ends[0]: 0.0, ends[1]: 0.0}
    running = True

    def stop(_signum, _frame):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("READY", flush=True)

    while running:
        timeout = None
        if pending:
            timeout = max(0.0, pending[0][0] - time.monotonic())
        try:
            readable, _, _ = select.select(ends, [], [], timeout if timeout is not None else 0.5)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            other = ends[1] if fd == ends[0] else ends[0]
            while True:
                try:
                    frame = os.read(fd, MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError:
                    frame = b""
                if not frame:
                    break
                ethertype = struct.unpack("!H", frame[12:14])[0] if len(frame) >= 14 else 0
                if ethertype == ETH_P_ARP:
                    due = now
                else:
                    if rng.random() * 100 < args.loss:
                        counts["dropped"] += 1
                        continue
                    due = now + (args.delay + rng.uniform(-args.jitter, args.jitter)) / 1000.0
                if due < last_due[other]:
                    counts["reordered"] += 1
                last_due[other] = max(last_due[other], due)
                sequence += 1
                heapq.heappush(pending, (due, sequence, other, frame))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, fd, frame = heapq.heappop(pending)
            try:
                os.write(fd, frame)
                counts["forwarded"] += 1
            except OSError:
                counts["dropped"] += 1
    print("impaired wire: %(forwarded)d frames forwarded, %(dropped)d dropped, %(reordered)d reordered" % counts,
          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
