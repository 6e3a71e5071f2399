#!/usr/bin/env python3
"""Turn bench/work/results/raw.json into markdown fragments + summary.json.

usage: report.py RAW_JSON RESULTS_DIR    (prints summary.md on stdout)
"""
import json
import os
import statistics
import sys

raw = json.load(open(sys.argv[1]))
out_dir = sys.argv[2]
meta = raw["meta"]
sizes = [str(s) for s in meta["sizes_mib"]]
largest = sizes[-1] if sizes else None


def med(xs):
    xs = [x for x in (xs or []) if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, (int, float)) and abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.{nd}f}"


def ratio(a, b):
    return a / b if (a is not None and b) else None


def fmt_ratio(r):
    return "–" if r is None else f"{r:.1f}×"


def size_label(s):
    s = int(s)
    return f"{s // 1024} GiB" if s % 1024 == 0 else f"{s} MiB"


def runs(srv, s, key):
    return [r[key] for r in raw.get(srv, {}).get("transfer", {}).get(s, [])]


def runs_txt(xs):
    return ", ".join(fmt(x) for x in xs) if xs else "–"


c = raw.get("ceilings", {})
derived = {"ceilings": {}, "ims": {}, "glance": {}, "targets": []}

# ------------------------------------------------------------------ ceilings
ceil_md = ["| ceiling | median | runs |", "|---|---|---|"]
disk = {}
for s in sizes:
    xs = c.get("disk_write_MBps", {}).get(s, [])
    disk[s] = med(xs)
    ceil_md.append(f"| durable sequential write, {size_label(s)} random data, `dd bs=1M conv=fdatasync` (MB/s) "
                   f"| **{fmt(disk[s])}** | {runs_txt(xs)} |")
for key, label in [("openssl_md5_MBps", "MD5, `openssl speed -evp md5 -bytes 1048576` (MB/s, 1 core)"),
                   ("openssl_sha512_MBps", "SHA-512, `openssl speed -evp sha512 -bytes 1048576` (MB/s, 1 core)"),
                   ("loopback_put_MBps", f"loopback HTTP upload yardstick: `curl -T` {size_label(sizes[0]) if sizes else ''} to a minimal discard server (MB/s)"),
                   ("loopback_get_MBps", f"loopback HTTP download yardstick: `curl -o /dev/null` from a minimal `sendfile()` server (MB/s)"),
                   ("md5sum_MBps", "`md5sum` of a page-cached file (MB/s)"),
                   ("sha512sum_MBps", "`sha512sum` of a page-cached file (MB/s)")]:
    xs = c.get(key, [])
    derived["ceilings"][key] = med(xs)
    ceil_md.append(f"| {label} | **{fmt(med(xs))}** | {runs_txt(xs)} |")
derived["ceilings"]["disk_write_MBps"] = disk

# ------------------------------------------------------------------ comparison
cmp_md = ["| measure | ims | Glance 33.0.0 | ims / Glance |", "|---|---|---|---|"]
for s in sizes:
    for key, label in [("upload_MBps", "upload"), ("download_MBps", "download right after the upload"),
                       ("download_warm_MBps", "download again (page cache warm)")]:
        i, g = med(runs("ims", s, key)), med(runs("glance", s, key))
        derived["ims"].setdefault(key, {})[s] = i
        derived["glance"].setdefault(key, {})[s] = g
        cmp_md.append(f"| {label} {size_label(s)} (MB/s, median of {meta['reps']}) | **{fmt(i)}** "
                      f"({runs_txt(runs('ims', s, key))}) | {fmt(g)} ({runs_txt(runs('glance', s, key))}) "
                      f"| {fmt_ratio(ratio(i, g))} |")
for s in sizes:
    i = max(runs("ims", s, "rss_growth_MiB") or [None], key=lambda x: -1 if x is None else x)
    g = max(runs("glance", s, "rss_growth_MiB") or [None], key=lambda x: -1 if x is None else x)
    derived["ims"].setdefault("rss_growth_MiB", {})[s] = i
    derived["glance"].setdefault("rss_growth_MiB", {})[s] = g
    cmp_md.append(f"| peak RSS growth during the {size_label(s)} upload (MiB, worst run; peak − RSS just before) "
                  f"| **{fmt(i)}** | {fmt(g)} | |")


def peak_over_idle(srv):
    d = raw.get(srv, {})
    peaks = [r.get("rss_peak_KiB") for s in sizes for r in d.get("transfer", {}).get(s, [])]
    peaks = [p for p in peaks if p]
    if not peaks or not d.get("rss_idle_KiB"):
        return None, None
    return (max(peaks) - d["rss_idle_KiB"]) / 1024, max(peaks) / 1024


pi, pim = peak_over_idle("ims")
pg, pgm = peak_over_idle("glance")
derived["ims"]["rss_peak_over_idle_MiB"] = pi
derived["glance"]["rss_peak_over_idle_MiB"] = pg
cmp_md.append(f"| peak RSS during all uploads − RSS of the idle server at start (MiB) | **{fmt(pi)}** "
              f"(peak {fmt(pim)}) | {fmt(pg)} (peak {fmt(pgm)}, all gunicorn processes) | |")
I, G = raw.get("ims", {}), raw.get("glance", {})
cmp_md.append(f"| catalog size for the rows below (images) | {I.get('catalog_images', '–')} "
              f"| {G.get('catalog_images', '–')} | |")
ci, cg = (I.get("create") or {}).get("rps"), (G.get("create") or {}).get("rps")
cmp_md.append(f"| create `POST /v2/images` (req/s, wrk {meta['wrk_connections']} conns) | **{fmt(ci)}** | {fmt(cg)} | {fmt_ratio(ratio(ci, cg))} |")
for p in ("p50", "p99"):
    a = (I.get("create") or {}).get("lat_ms", {}).get(p)
    b = (G.get("create") or {}).get("lat_ms", {}).get(p)
    cmp_md.append(f"| create latency under load {p} (ms) | {fmt(a, 2)} | {fmt(b, 2)} | |")
for p in ("p50", "p90", "p99", "max"):
    a = (I.get("list_latency_ms") or {}).get(p)
    b = (G.get("list_latency_ms") or {}).get(p)
    cmp_md.append(f"| `GET /v2/images?limit=25` latency {p}, {meta['list_requests']} sequential requests (ms) "
                  f"| **{fmt(a, 2)}** | {fmt(b, 2)} | {fmt_ratio(ratio(b, a))} faster |" if a and b else
                  f"| `GET /v2/images?limit=25` latency {p} (ms) | {fmt(a, 2)} | {fmt(b, 2)} | |")
li, lg = (I.get("list") or {}).get("rps"), (G.get("list") or {}).get("rps")
cmp_md.append(f"| list `?limit=25` throughput (req/s, wrk {meta['wrk_connections']} conns, {meta['wrk_seconds']} s) "
              f"| **{fmt(li)}** | {fmt(lg)} | {fmt_ratio(ratio(li, lg))} |")
for p in ("p50", "p99"):
    a = (I.get("list") or {}).get("lat_ms", {}).get(p)
    b = (G.get("list") or {}).get("lat_ms", {}).get(p)
    cmp_md.append(f"| list latency under load {p} (ms) | {fmt(a, 2)} | {fmt(b, 2)} | |")

mi, mg = (I.get("metadefs_list") or {}).get("rps"), (G.get("metadefs_list") or {}).get("rps")
if mi or mg:
    cmp_md.append(f"| metadefs namespaces in the catalog / per page of `GET /v2/metadefs/namespaces` "
                  f"| {I.get('metadefs_namespaces', '–')} / {I.get('metadefs_page', '–')} "
                  f"| {G.get('metadefs_namespaces', '–')} / {G.get('metadefs_page', '–')} | |")
    cmp_md.append(f"| `GET /v2/metadefs/namespaces` throughput (req/s, wrk {meta['wrk_connections']} conns, "
                  f"{meta['wrk_seconds']} s) | **{fmt(mi)}** | {fmt(mg)} | {fmt_ratio(ratio(mi, mg))} |")
    for p in ("p50", "p99"):
        a = (I.get("metadefs_list") or {}).get("lat_ms", {}).get(p)
        b = (G.get("metadefs_list") or {}).get("lat_ms", {}).get(p)
        cmp_md.append(f"| metadefs namespace list latency under load {p} (ms) | {fmt(a, 2)} | {fmt(b, 2)} | |")

# ------------------------------------------------------------------ targets
tg = []


def target(name, ok, figures):
    status = "n/a (not measured)" if ok is None else ("**met**" if ok else "**NOT met**")
    tg.append(f"| {name} | {status} | {figures} |")
    derived["targets"].append({"target": name, "met": ok, "figures": figures})


for s in sizes:
    i, g = derived["ims"]["upload_MBps"][s], derived["glance"]["upload_MBps"][s]
    r = ratio(i, g)
    target(f"upload {size_label(s)} ≥ 4× Glance", None if r is None else r >= 4,
           f"{fmt(i)} vs {fmt(g)} MB/s = {fmt_ratio(r)}")
for s in sizes:
    i, d = derived["ims"]["upload_MBps"][s], disk.get(s)
    r = ratio(i, d)
    target(f"upload {size_label(s)} ≥ 80% of the disk ceiling", None if r is None else r >= 0.8,
           f"{fmt(i)} of {fmt(d)} MB/s = {'–' if r is None else f'{r * 100:.0f}%'}")
for s in sizes:
    for key, label in (("download_MBps", "right after upload"), ("download_warm_MBps", "page cache warm")):
        i, g = derived["ims"][key][s], derived["glance"][key][s]
        r = ratio(i, g)
        target(f"download {size_label(s)} ({label}) ≥ 2× Glance", None if r is None else r >= 2,
               f"{fmt(i)} vs {fmt(g)} MB/s = {fmt_ratio(r)}")
if largest:
    g = derived["ims"]["rss_growth_MiB"][largest]
    target(f"RSS growth during the {size_label(largest)} upload < 64 MiB", None if g is None else g < 64,
           f"{fmt(g)} MiB (worst of {meta['reps']})")
p99 = (I.get("list_latency_ms") or {}).get("p99")
n = I.get("catalog_images")
target(f"list p99 < 10 ms at {meta['n_images']:,} images", None if p99 is None else p99 < 10,
       f"p99 {fmt(p99, 2)} ms with {n} images in the catalog")
r = ratio(ci, cg)
target("create req/s ≥ 10× Glance", None if r is None else r >= 10, f"{fmt(ci)} vs {fmt(cg)} req/s = {fmt_ratio(r)}")
r = ratio(li, lg)
target("list req/s ≥ 10× Glance", None if r is None else r >= 10, f"{fmt(li)} vs {fmt(lg)} req/s = {fmt_ratio(r)}")
r = ratio(mi, mg)
target(f"metadefs namespace list req/s ≥ 5× Glance ({meta.get('namespaces', 100)} namespaces)",
       None if r is None else r >= 5, f"{fmt(mi)} vs {fmt(mg)} req/s = {fmt_ratio(r)}")
tg_md = ["| target | status | measured |", "|---|---|---|"] + tg

# ------------------------------------------------------------------ noise + meta
noise_md = ["| phase | load average (1/5/15 min) at start | rustc / cargo running at start |", "|---|---|---|"]
for k, v in raw.get("noise", {}).items():
    noise_md.append(f"| {k} | {v['loadavg']} | {v['rustc']} / {v['cargo']} |")
busy_md = ["| measurement | CPU used by other processes (cores, mean) | share of time rustc/cargo ran |",
           "|---|---|---|"]


def busy_row(label, v):
    if v:
        busy_md.append(f"| {label} | {v.get('foreign_cores', 0):.2f} | {v.get('compiler_share', 0) * 100:.0f}% |")


busy_row("machine ceilings", c.get("noise"))
for srv, name in (("ims", "ims"), ("glance", "Glance")):
    d = raw.get(srv, {})
    for s in sizes:
        for n, r in enumerate(d.get("transfer", {}).get(s, []), 1):
            busy_row(f"{name} {size_label(s)} upload + downloads #{n}", r.get("noise"))
    busy_row(f"{name} create", (d.get("create") or {}).get("noise"))
    busy_row(f"{name} list latency", (d.get("list_latency_ms") or {}).get("noise"))
    busy_row(f"{name} list throughput", (d.get("list") or {}).get("noise"))
    busy_row(f"{name} metadefs namespace list throughput", (d.get("metadefs_list") or {}).get("noise"))
noise_md += ["", *busy_md]
meta_md = (f"Run {meta['date']} on `{meta['host']}`: {meta['ncpu']} × {meta['cpu']}, {meta['mem_gib']} GiB RAM, "
           f"Linux {meta['kernel']}. Sizes {', '.join(size_label(s) for s in sizes)} × {meta['reps']} runs each; "
           f"catalogs: ims {meta['n_images']:,}, Glance {meta['glance_images']:,} images; "
           f"Glance {meta['glance']['version']} under gunicorn {meta['glance']['workers']} workers × "
           f"{meta['glance']['threads']} threads; load generator "
           f"{'wrk' if meta['have_wrk'] else 'Python (wrk missing)'}"
           f"{'; QUICK MODE' if meta['quick'] else ''}.")
if meta.get("steps", "transfer,catalog,metadefs") != "transfer,catalog,metadefs" or \
        meta.get("phases", "ceilings,glance,ims") != "ceilings,glance,ims":
    meta_md += f" Only phases {meta.get('phases')}, steps {meta.get('steps')} (BENCH_ONLY, BENCH_STEPS)."
skipped = raw.get("skipped", {})
if skipped:
    meta_md += " Skipped: " + ", ".join(f"{k} ({v})" for k, v in skipped.items()) + "."

frag = {"ceilings.md": ceil_md, "comparison.md": cmp_md, "targets.md": tg_md, "noise.md": noise_md}
for name, lines in frag.items():
    with open(os.path.join(out_dir, name), "w") as f:
        f.write("\n".join(lines) + "\n")
summary = "\n".join([
    "# ims vs Glance — bench/run results", "", meta_md, "",
    "## Machine ceilings", "", *ceil_md, "",
    "## ims vs Glance", "", *cmp_md, "",
    "## Targets", "", *tg_md, "",
    "## Noise", "", *noise_md, ""])
with open(os.path.join(out_dir, "summary.md"), "w") as f:
    f.write(summary)
with open(os.path.join(out_dir, "summary.json"), "w") as f:
    json.dump(derived, f, indent=2)
print(summary)
