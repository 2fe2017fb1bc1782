#!/usr/bin/env python3
"""How many of Vector's options sluice accepts, per component sluice shares with Vector.

Reads the top-level options of each component from Vector's generated reference
(website/cue/reference/components/*/generated/<type>.cue in a checkout of
vectordotdev/vector, given as VECTOR_REPO or the first argument) and asks a sluice
binary (SLUICE_BIN, default target/debug/sluice) to validate a minimal config of that
component with each option set. An option counts as accepted unless `validate` calls it
an unknown key; one that sluice refuses on purpose ("not supported by sluice: why")
is counted apart. Usage:

    VECTOR_REPO=/path/to/vector python3 scripts/vector_options.py [--list]
"""

import os
import re
import subprocess
import sys
import tempfile

# Each shared component: its kind, Vector's type, sluice's type, and the options a
# minimal valid config needs.
COMPONENTS = [
    ("sources", "file", "file", 'include = ["/tmp/none/*.log"]'),
    ("sources", "syslog", "syslog", 'mode = "tcp"\naddress = "127.0.0.1:1"'),
    ("sources", "http_server", "http_server", 'address = "127.0.0.1:1"'),
    ("sources", "demo_logs", "demo_logs", 'format = "json"'),
    ("sources", "internal_metrics", "internal_metrics", ""),
    ("sources", "stdin", "stdin", ""),
    (
        "sources",
        "kafka",
        "kafka",
        'bootstrap_servers = "127.0.0.1:1"\ngroup_id = "g"\ntopics = ["t"]',
    ),
    ("transforms", "sample", "sample", "rate = 2"),
    ("sinks", "file", "file", 'path = "/tmp/none/out"\nencoding.codec = "json"'),
    ("sinks", "console", "console", 'encoding.codec = "json"'),
    ("sinks", "http", "http", 'uri = "http://127.0.0.1:1/"\nencoding.codec = "json"'),
    ("sinks", "blackhole", "blackhole", ""),
    (
        "sinks",
        "kafka",
        "kafka",
        'bootstrap_servers = "127.0.0.1:1"\ntopic = "t"\nencoding.codec = "json"',
    ),
    (
        "sinks",
        "aws_cloudwatch_logs",
        "aws_cloudwatch_logs",
        'group_name = "g"\nstream_name = "s"\nregion = "us-east-1"\nencoding.codec = "json"',
    ),
    (
        "sinks",
        "influxdb_logs",
        "influxdb_logs",
        'endpoint = "http://127.0.0.1:1"\nversion = "1"\ndatabase = "d"\nmeasurement = "m"',
    ),
    (
        "sinks",
        "influxdb_metrics",
        "influxdb_metrics",
        'endpoint = "http://127.0.0.1:1"\nversion = "1"\ndatabase = "d"',
    ),
]

# Keys every component of a kind has in Vector's outer config, not in the cue files.
SKIP = {"type", "inputs", "graph"}


def top_level_options(cue_text):
    """Names of the options at the first level of `configuration: {...}`."""
    return sorted(
        set(re.findall(r"^\t(\w+): \{", cue_text, flags=re.M)) - SKIP
    )


def probe(binary, kind, sluice_type, base, option):
    """'accepted', 'refused' (on purpose, with a reason) or 'unknown'."""
    producer = "" if kind == "sources" else '\n[sources.src]\ntype = "stdin"\n'
    inputs = "" if kind == "sources" else 'inputs = ["src"]\n'
    consumer = (
        '\n[sinks.out]\ntype = "blackhole"\ninputs = ["c"]\n'
        if kind != "sinks"
        else ""
    )
    # The probed key replaces the base's own line for it, if any.
    base = "\n".join(
        l for l in base.splitlines() if not l.startswith((f"{option} ", f"{option}."))
    )
    # A value of the wrong type still tells a known key from an unknown one.
    text = f'{producer}\n[{kind}.c]\ntype = "{sluice_type}"\n{inputs}{base}\n{option} = "__probe__"\n{consumer}'
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        out = subprocess.run(
            [binary, "validate", "--config", path],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.unlink(path)
    text = out.stdout + out.stderr
    if f"unknown {kind[:-1]} type" in text:
        # The component itself is missing: none of its options work.
        return "unknown"
    lines = [l for l in text.splitlines() if f"key `{option}" in l]
    if any("unknown key" in l or "unknown top-level key" in l for l in lines):
        return "unknown"
    if any("not supported by sluice" in l for l in lines):
        return "refused"
    return "accepted"


def main():
    repo = os.environ.get("VECTOR_REPO") or (sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else None)
    if not repo:
        sys.exit("set VECTOR_REPO to a checkout of vectordotdev/vector")
    binary = os.environ.get("SLUICE_BIN", "target/debug/sluice")
    show = "--list" in sys.argv
    totals = [0, 0, 0]
    print(f"{'component':<28} {'accepted':>8} {'refused':>8} {'of':>4}")
    for kind, vector_type, sluice_type, base in COMPONENTS:
        cue = os.path.join(
            repo, "website/cue/reference/components", kind, "generated", vector_type + ".cue"
        )
        with open(cue) as f:
            options = top_level_options(f.read())
        results = {o: probe(binary, kind, sluice_type, base, o) for o in options}
        accepted = sum(r == "accepted" for r in results.values())
        refused = sum(r == "refused" for r in results.values())
        totals[0] += accepted
        totals[1] += refused
        totals[2] += len(options)
        print(f"{kind + '.' + vector_type:<28} {accepted:>8} {refused:>8} {len(options):>4}")
        if show:
            missing = [o for o, r in results.items() if r == "unknown"]
            print(f"    missing: {', '.join(missing) or '-'}")
    print(f"{'total':<28} {totals[0]:>8} {totals[1]:>8} {totals[2]:>4}")


if __name__ == "__main__":
    main()
