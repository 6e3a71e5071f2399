#!/usr/bin/env python3
"""Top up Glance's SQLite catalog to TOTAL live images by cloning rows that Glance itself
created through the API (images created by bench/lib/create.lua are plain `queued` rows with
no properties, tags or locations). Used only when BENCH_GLANCE_API_CREATES < the catalog
size, so that list latency is measured against a catalog as large as ims's.

usage: glance_fill.py GLANCE_SQLITE TOTAL     (prints the number of rows inserted)
"""
import datetime
import sqlite3
import sys
import uuid

db, total = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db, timeout=60)
have = con.execute("SELECT count(*) FROM images WHERE deleted = 0").fetchone()[0]
need = total - have
if need <= 0:
    print(0)
    sys.exit(0)
cols = [r[1] for r in con.execute("PRAGMA table_info(images)")]
tmpl = con.execute(
    f"SELECT {', '.join(cols)} FROM images WHERE deleted = 0 AND name LIKE 'bench-%' "
    "AND name NOT LIKE 'bench-xfer-%' ORDER BY created_at LIMIT 1").fetchone()
if tmpl is None:
    sys.exit("no API-created template row found")
row = dict(zip(cols, tmpl))
# spread created_at/updated_at over the hour *before* the oldest API row: the API-created
# images stay on the first pages, as they would in a catalog that grew over time
oldest = con.execute("SELECT min(created_at) FROM images").fetchone()[0]
base = datetime.datetime.fromisoformat(str(oldest)) - datetime.timedelta(hours=1)
rows = []
for i in range(need):
    r = dict(row)
    r["id"] = str(uuid.uuid4())
    r["name"] = f"bench-fill-{i}"
    ts = (base + datetime.timedelta(milliseconds=i * 3600_000 // need)).strftime("%Y-%m-%d %H:%M:%S.%f")
    r["created_at"] = ts
    r["updated_at"] = ts
    rows.append(tuple(r[c] for c in cols))
con.executemany(f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
con.commit()
print(need)
