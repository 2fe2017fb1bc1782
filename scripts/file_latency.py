#!/usr/bin/env python3
"""Latency of the file source through the two cases of issue 8, timed to the last line:
a two-line, 100-byte file, then a file renamed away (`app.log` -> `app.log.1`, outside
the `*.log` glob), an empty `app.log` created in its place and 1000 lines appended.

usage: scripts/file_latency.py [BINARY] [inotify|poll]
"""
import os
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sluice"
watch = sys.argv[2] if len(sys.argv) > 2 else "inotify"
d = tempfile.mkdtemp()
os.makedirs(f"{d}/logs")
with open(f"{d}/s.toml", "w") as f:
    f.write(f'''data_dir = "{d}/data"
[api]
address = "127.0.0.1:0"
[sources.tail]
type = "file"
include = ["{d}/logs/*.log"]
watch = "{watch}"
[sinks.out]
type = "file"
inputs = ["tail"]
path = "{d}/out.jsonl"
''')
p = subprocess.Popen([binary, "run", "--config", f"{d}/s.toml"], stderr=subprocess.DEVNULL)
time.sleep(0.5)


def count():
    try:
        with open(f"{d}/out.jsonl") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait(n, limit=90):
    t = time.time()
    while count() < n and time.time() - t < limit:
        time.sleep(0.005)
    return time.time() - t, count()


with open(f"{d}/logs/cron.log", "w") as f:
    f.write("a" * 49 + "\n" + "b" * 49 + "\n")
t, c = wait(2)
print(f"{watch}: two-line 100-byte file: {c} lines after {t * 1000:.0f} ms")
with open(f"{d}/logs/app.log", "a") as f:
    f.write("".join(f"first file line {i}\n" for i in range(1, 1001)))
time.sleep(1)
os.rename(f"{d}/logs/app.log", f"{d}/logs/app.log.1")
open(f"{d}/logs/app.log", "w").close()
time.sleep(0.5)
with open(f"{d}/logs/app.log", "a") as f:
    f.write("".join(f"second file line {i}\n" for i in range(1001, 2001)))
t, c = wait(2002)
print(f"{watch}: issue reproduction: {c - 2} of 2000 lines, "
      f"the last {t * 1000:.0f} ms after the second append")
p.terminate()
p.wait()
