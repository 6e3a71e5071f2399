#!/usr/bin/env python3
"""Noise monitor for bench/run (stdlib only, Linux /proc).

usage: monitor.py ROOT_PID [INTERVAL_S]

Every INTERVAL_S seconds prints one line:
    <unix time> <rustc procs> <cargo procs> <foreign CPU, in cores>
"foreign CPU" = all non-idle CPU time on the machine minus the CPU time (own + reaped
children's) of ROOT_PID's process tree (the benchmark script, its servers and its load generators), i.e. how much
of the 2 cores something else (a compiler, another test suite, …) took during that second.
"""
import os
import sys
import time

root = int(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
hz = os.sysconf("SC_CLK_TCK")


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    return sum(v[:8]) - v[3] - v[4]


def procs():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        # rest[0]=state, rest[1]=ppid, rest[11..14]=utime stime cutime cstime
        out[int(d)] = (comm, int(rest[1]), sum(int(x) for x in rest[11:15]))
    return out


def tree_cpu(ps):
    children = {}
    for pid, (_, ppid, _) in ps.items():
        children.setdefault(ppid, []).append(pid)
    ours, stack = {}, [root]
    while stack:
        p = stack.pop()
        if p in ps:
            ours[p] = ps[p][2]
        stack.extend(children.get(p, []))
    return ours


prev_busy = machine_busy()
prev_ours = tree_cpu(procs())
while True:
    time.sleep(interval)
    if not os.path.exists(f"/proc/{root}"):
        break
    ps = procs()
    busy = machine_busy()
    ours = tree_cpu(ps)
    # Alive processes: growth of own + reaped children's time (cutime/cstime), so short-lived
    # children (curl, jq, awk) count too. A process that vanished was reaped by a parent in
    # the tree, whose cutime/cstime now include its whole life: take back what we had
    # already counted for it.
    ours_delta = sum(t - prev_ours.get(p, 0) for p, t in ours.items())
    ours_delta -= sum(t for p, t in prev_ours.items() if p not in ours)
    foreign = max(0.0, (busy - prev_busy - ours_delta) / hz / interval)
    rustc = sum(1 for c, _, _ in ps.values() if c == "rustc")
    cargo = sum(1 for c, _, _ in ps.values() if c == "cargo")
    print(f"{time.time():.3f} {rustc} {cargo} {foreign:.2f}", flush=True)
    prev_busy, prev_ours = busy, ours
