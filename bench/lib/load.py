#!/usr/bin/env python3
"""Fallback load generator for bench/run when wrk is not installed (stdlib only).

  load.py create URL N CONNS -H 'Header: v' ...   POST N images on CONNS threads
  load.py list   URL SECS CONNS -H 'Header: v' ... GET URL for SECS seconds on CONNS threads

Prints one JSON object with the same keys as bench/lib/{create,report}.lua.
Python's client costs far more CPU per request than wrk, so on a 2-core machine it
under-reports fast servers; the summary says which generator was used.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def parse_headers(args):
    headers = {}
    it = iter(args)
    for a in it:
        if a == "-H":
            k, _, v = next(it).partition(":")
            headers[k.strip()] = v.strip()
    return headers


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return round(sorted_ms[k], 3)


def main():
    mode, url, amount, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    headers = parse_headers(sys.argv[5:])
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    lock = threading.Lock()
    lat, bad = [], [0]
    remaining = [int(amount)] if mode == "create" else None
    deadline = time.monotonic() + float(amount) if mode == "list" else None

    def worker(tid):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        n = 0
        while True:
            if mode == "create":
                with lock:
                    if remaining[0] <= 0:
                        break
                    remaining[0] -= 1
                n += 1
                body = json.dumps({"name": f"bench-{tid}-{n}", "disk_format": "raw",
                                   "container_format": "bare"})
                h = dict(headers, **{"Content-Type": "application/json"})
                t0 = time.perf_counter()
                c.request("POST", path, body=body, headers=h)
                ok = 201
            else:
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                c.request("GET", path, headers=headers)
                ok = 200
            r = c.getresponse()
            r.read()
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                if r.status != ok:
                    bad[0] += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - start
    lat.sort()
    out = {"requests": len(lat), "seconds": round(secs, 3), "rps": round(len(lat) / secs, 1),
           "socket_errors": 0, "generator": "python",
           "lat_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
                      "max": round(lat[-1], 3) if lat else 0,
                      "mean": round(sum(lat) / len(lat), 3) if lat else 0}}
    if mode == "create":
        out["counted"] = len(lat)
        out["non201"] = bad[0]
    else:
        out["non200"] = bad[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
