#!/usr/bin/env python3
"""Redis figures for cluster mode's presence rows (docs/cluster.md "Redis").

Starts its own redis-server on 127.0.0.1 (a port it picks; killed by PID on
every exit path), then measures:
  - memory: used_memory before and after writing N presence rows the way
    PresenceDirectory writes them (SET presence:{user} NODE PX ttl), per row,
    and MEMORY USAGE of one row (which leaves out the expiry table's entry);
  - operations per second with redis-benchmark (pipelined 16 deep, 50
    connections, as many nodes would), on rows that exist and are the refreshing node's: the keepalive refresh (the Lua script
    PresenceDirectory::refresh runs, read out of presence_directory.cpp so the
    two cannot drift), against Redis' cheapest write, PEXPIRE, measured in the
    same run; and GET (a lookup), SPUBLISH (a bus message);
  - the server's own microseconds per call of each (INFO commandstats).

    python3 bench/redis_presence.py [--rows 200000] [--requests 400000]
"""
import argparse
import pathlib
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port():
    for _ in range(200):
        port = random.randint(20000, 29999)
        with socket.socket() as probe:
            try:
                probe.bind(('127.0.0.1', port))
                return port
            except OSError:
                continue
    raise SystemExit('no free port')


def refresh_script():
    source = (ROOT / 'cluster/redis/presence_directory.cpp').read_text()
    block = re.search(r'refresh_script =\s*((?:\s*"[^"]*")+);', source).group(1)
    return ''.join(re.findall(r'"([^"]*)"', block))


def cli(port, *args, stdin=None):
    return subprocess.run(['redis-cli', '-p', str(port), *args], input=stdin, capture_output=True,
                          check=True, text=stdin is None or isinstance(stdin, str)).stdout


def info_memory(port):
    text = cli(port, 'INFO', 'memory')
    return int(re.search(r'used_memory:(\d+)', text).group(1))


def resp(*args):
    out = [f'*{len(args)}\r\n'.encode()]
    for a in args:
        b = a.encode()
        out.append(b'$%d\r\n%s\r\n' % (len(b), b))
    return b''.join(out)


def benchmark(port, requests, rows, *command):
    # -r rows: __rand_int__ is then a row that exists (zero-padded to 12 digits, as loaded).
    out = subprocess.run(['redis-benchmark', '-p', str(port), '-q', '-c', '50', '-P', '16', '-r', str(rows),
                          '-n', str(requests), *command], capture_output=True, text=True, check=True).stdout
    # "-q" prints one line per test, the last state after carriage returns.
    line = out.replace('\r', '\n').strip().splitlines()[-1]
    return float(re.search(r'([\d.]+) requests per second', line).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rows', type=int, default=200000)
    parser.add_argument('--requests', type=int, default=400000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(['redis-server', '--port', str(port), '--bind', '127.0.0.1', '--save', '',
                                   '--appendonly', 'no', '--daemonize', 'no', '--dir', directory],
                                  stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    if cli(port, 'PING').strip() == 'PONG':
                        break
                except subprocess.CalledProcessError:
                    pass
                time.sleep(0.05)
            before = info_memory(port)
            # User IDs as a deployment may have them: user@domain, 25 characters; node IDs "node-NNN".
            rows = b''.join(resp('SET', f'presence:{{u{i:012d}@acme.example}}', 'node-017', 'PX', '45000')
                            for i in range(args.rows))
            cli(port, '--pipe', stdin=rows)
            after = info_memory(port)
            per_row = (after - before) / args.rows
            one_row = int(cli(port, 'MEMORY', 'USAGE', 'presence:{u000000000001@acme.example}').strip())
            print(f'rows: {args.rows}; used_memory per row: {per_row:.1f} bytes; MEMORY USAGE of one row: {one_row} bytes')

            cli(port, 'CONFIG', 'RESETSTAT')  # commandstats below count the benchmarks only
            sha = cli(port, 'SCRIPT', 'LOAD', refresh_script()).strip()
            key = 'presence:{u__rand_int__@acme.example}'
            refresh = benchmark(port, args.requests, args.rows, 'EVALSHA', sha, '1', key, 'node-017', '45000')
            pexpire = benchmark(port, args.requests, args.rows, 'PEXPIRE', key, '45000')
            set_nx = benchmark(port, args.requests, args.rows, 'SET', key, 'node-017', 'NX', 'PX', '45000')
            lookup = benchmark(port, args.requests, args.rows, 'GET', key)
            publish = benchmark(port, args.requests, args.rows, 'SPUBLISH', 'node:{node-017}', 'x' * 200)
            print(f'refresh (EVALSHA, the keepalive): {refresh:.0f}/s; PEXPIRE: {pexpire:.0f}/s; '
                  f'ratio {refresh / pexpire:.2f}; SET NX PX: {set_nx:.0f}/s')
            print(f'lookup (GET): {lookup:.0f}/s; bus message (SPUBLISH, 200 bytes, no subscriber): {publish:.0f}/s')
            # The server's own time per call: what a core of a Redis primary spends, less
            # sensitive than requests per second to a client sharing a loaded machine.
            stats = cli(port, 'INFO', 'commandstats')
            for command in ('evalsha', 'pexpire', 'get', 'spublish', 'set'):
                found = re.search(rf'cmdstat_{command}:calls=(\d+),usec=\d+,usec_per_call=([\d.]+)', stats)
                if found:
                    usec = float(found.group(2))
                    print(f'{command.upper()}: {usec:.2f} us per call in the server ({1e6 / usec:.0f} per core-second)')
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
