#!/usr/bin/env python3
"""Prints the JSON lines written by bench.sh / herald-loadgen as one table."""
import json
import sys


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


rows = []
for path in sys.argv[1:]:
    with open(path) as f:
        rows += [json.loads(line) for line in f if line.strip().startswith("{")]

idle = [r for r in rows if r.get("mode") == "idle"]
runs = [r for r in rows if r.get("mode") == "publish"]
errors = [r for r in rows if "error" in r]

if idle:
    print("\nIdle memory")
    print(f"{'server':<18}{'clients':>8}{'conn':>8}{'procs':>6}{'connect s':>10}{'conn p99 ms':>12}{'RSS before MiB':>15}{'RSS idle MiB':>13}{'KiB/conn':>9}")
    for r in idle:
        per = r.get("rss_per_conn_bytes")
        print(f"{r.get('label',''):<18}{r['clients']:>8}{r['connected']:>8}{r['processes']:>6}{fmt(r['connect_total_s'],2):>10}"
              f"{fmt(r['connect_p99_ms']):>12}{fmt((r.get('server_rss_before_kib') or 0)/1024):>15}"
              f"{fmt((r.get('server_rss_idle_kib') or 0)/1024):>13}{fmt(per/1024 if per is not None else None):>9}")

connects = [r for r in rows if r.get("connected")]
if connects:
    print("\nConnect phase (every run)")
    print(f"{'server':<18}{'mode':>8}{'clients':>8}{'conn':>8}{'connect s':>10}{'conn/s':>9}{'conn p99 ms':>12}{'srv CPU s':>10}{'srv µs/conn':>12}")
    for r in connects:
        print(f"{r.get('label',''):<18}{r.get('mode',''):>8}{r['clients']:>8}{r['connected']:>8}{fmt(r['connect_total_s'],2):>10}"
              f"{fmt(r.get('connects_per_s'),0):>9}{fmt(r['connect_p99_ms']):>12}{fmt(r.get('server_cpu_connect_s'),2):>10}"
              f"{fmt(r.get('server_cpu_us_per_connect'),0):>12}")
    print("srv CPU s: the server's user + system CPU from the first connection attempt to the last CONNECT; srv µs/conn: that per\n"
          "connection (TCP accept, HTTP upgrade, Engine.IO and Socket.IO handshakes)")

if runs:
    print("\nFan-out (open loop)")
    hdr = (f"{'server':<18}{'clients':>8}{'msg/s':>7}{'expected':>10}{'received':>10}{'ratio':>8}{'deliv/s':>10}"
           f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'srv CPU%':>9}{'srv µs/d':>9}{'lg µs/d':>8}{'emit p99':>9}{'RSS MiB':>8}{'srv wait s':>11}")
    print(hdr)
    for r in runs:
        print(f"{r.get('label',''):<18}{r['clients']:>8}{fmt(r['rate'],0):>7}{r['expected']:>10}{r['received']:>10}"
              f"{fmt(r['received_ratio']*100,2):>8}{fmt(r['deliveries_per_s'],0):>10}{fmt(r['lat_p50_ms'],2):>9}"
              f"{fmt(r['lat_p90_ms'],2):>9}{fmt(r['lat_p99_ms'],2):>9}{fmt(r['lat_max_ms'],1):>9}"
              f"{fmt(r.get('server_cpu_pct_publish')):>9}{fmt(r.get('server_cpu_us_per_delivery'),2):>9}"
              f"{fmt(r.get('loadgen_cpu_us_per_delivery'),2):>8}{fmt(r.get('emit_resp_p99_ms'),1):>9}"
              f"{fmt((r.get('server_rss_after_kib') or 0)/1024,0):>8}{fmt(r.get('server_runqueue_wait_s'),2):>11}")
    print("srv µs/d, lg µs/d: CPU µs per delivery (server, load generator); srv wait s: seconds the server was\n"
          "runnable but waiting for its CPU (other load on that core makes the run unreliable)")
for r in errors:
    print(f"error: {r}")
