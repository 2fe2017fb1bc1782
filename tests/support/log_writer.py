#!/usr/bin/env python3
"""A logging application for the rotation tests.

Appends numbered lines (`seq=NNNNNNNN` and 60 bytes of padding) to a log at a steady
pace through one O_APPEND descriptor, as daemons do, and reopens the path only when it
receives SIGHUP, which is what logrotate's `postrotate` sends. Until then, every line
goes to whatever file the descriptor refers to, renamed or not.

usage: log_writer.py PATH TOTAL LINES_PER_TICK TICK_SECONDS
"""
import os
import signal
import sys
import time

path = sys.argv[1]
total = int(sys.argv[2])
per_tick = int(sys.argv[3])
tick = float(sys.argv[4])

reopen = False


def on_hup(_signum, _frame):
    global reopen
    reopen = True


signal.signal(signal.SIGHUP, on_hup)


def open_log():
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


fd = open_log()
pad = "x" * 60
i = 0
while i < total:
    if reopen:
        reopen = False
        os.close(fd)
        fd = open_log()
    n = min(per_tick, total - i)
    # One write per tick, whole lines: the reader still sees partial lines at times.
    os.write(fd, "".join(f"seq={j:08d} {pad}\n" for j in range(i, i + n)).encode())
    i += n
    time.sleep(tick)
os.close(fd)
