#!/usr/bin/env python3
"""Runs a test program against a private PulseAudio daemon started here.

The daemon gets its own HOME and runtime directories under a temporary folder,
a unix socket with anonymous access, and a null sink `tsunagu_test` (whose
monitor source captures what is played into it). The program finds it through
PULSE_SERVER. The daemon runs its sink thread at real-time priority and its main
thread at nice -11, as a desktop's PulseAudio gets them from rtkit: without that, a
CI machine at load 15 starved the null sink for hundreds of milliseconds, so the
player's 200 ms queue overflowed (integration/voice_device_mode: 78 frames dropped,
speech score 0.739). As root the daemon sets the priorities itself. The daemon
is killed by its PID on every way out. Exits 77 (skipped) with the reason when
pulseaudio is not installed or will not start.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 2:
        print("usage: with_pulseaudio.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    daemon_binary = shutil.which("pulseaudio")
    if daemon_binary is None:
        print("SKIP: pulseaudio is not installed (apt-get install pulseaudio)")
        return 77
    folder = tempfile.mkdtemp(prefix="tsunagu-pulse-")
    daemon = None
    try:
        env = dict(os.environ)
        for name in ("HOME", "XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "XDG_CONFIG_HOME"):
            path = os.path.join(folder, name.lower())
            os.makedirs(path, mode=0o700)
            env[name] = path
        socket = os.path.join(folder, "native")
        env["PULSE_SERVER"] = "unix:" + socket
        env.pop("DISPLAY", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        log = open(os.path.join(folder, "daemon.log"), "w")
        # -n: no default.pa (nothing of the machine's setup); as root pulseaudio
        # warns that it wants --system, but runs; no idle exit, no pid file.
        daemon = subprocess.Popen(
            [daemon_binary, "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
             "--disallow-exit", "--log-target=stderr", "--high-priority=yes", "--realtime=yes",
             "--load=module-native-protocol-unix socket=%s auth-anonymous=1" % socket,
             "--load=module-null-sink sink_name=tsunagu_test rate=48000"],
            env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(socket):
            if daemon.poll() is not None or time.monotonic() > deadline:
                log.flush()
                with open(os.path.join(folder, "daemon.log")) as f:
                    print(f.read()[-2000:])
                print("SKIP: the pulseaudio daemon did not start (log above)")
                return 77
            time.sleep(0.05)
        env["TSUNAGU_TEST_PULSE"] = "1"
        # The last test case stops the daemon mid-stream to see the failure reported.
        env["TSUNAGU_TEST_PULSE_PID"] = str(daemon.pid)
        result = subprocess.run(sys.argv[1:], env=env, timeout=90)
        return result.returncode
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
