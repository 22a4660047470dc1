#!/usr/bin/env python3
"""Turn bench/out/results.tsv (+ checks.tsv) into the Markdown table of bench/run.

results.tsv: key, label, probes, concurrency, wall_s, user_s, sys_s, rss_kib, busy_s, nginx_s, ok, exit, note
  (busy_s: all CPUs' non-idle time over the row; nginx_s: the nginx worker's CPU time)
checks.tsv:  name, value, target, verdict (PASS/MISS/FAIL/n/a), detail
Unmeasured fields are "-". Only reads files; prints Markdown on stdout.
"""
import os
import sys

BUSY_SHARE = 0.10  # flag a row when other work took more than this share of all CPUs

RESULT_COLS = ["key", "label", "probes", "conc", "wall", "user", "sys", "rss_kib", "busy", "nginx", "ok", "exit", "note"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def read_rows(path):
    rows = {}
    order = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < len(RESULT_COLS):
                    parts += [""] * (len(RESULT_COLS) - len(parts))
                r = dict(zip(RESULT_COLS, parts))
                rows[r["key"]] = r
                order.append(r["key"])
    except FileNotFoundError:
        pass
    return rows, order


def derived(r):
    probes, wall = num(r["probes"]), num(r["wall"])
    user, sys_ = num(r["user"]), num(r["sys"])
    rss = num(r["rss_kib"])
    out = {}
    out["rate"] = probes / wall if probes and wall else None
    out["cpu1k"] = (user + sys_) / probes * 1000 if probes and user is not None and sys_ is not None else None
    out["rss_mib"] = rss / 1024 if rss is not None else None
    busy, ng = num(r["busy"]), num(r["nginx"])
    out["nginx_pct"] = ng / wall * 100 if ng is not None and wall else None
    out["other"] = (max(0.0, busy - user - sys_ - ng)
                    if None not in (busy, user, sys_, ng) else None)
    return out


def fmt(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def verdict(value, target, op):
    if value is None:
        return "n/a"
    ok = value >= target if op == ">=" else value <= target
    return "PASS" if ok else "MISS"


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "bench/out"
    rows, order = read_rows(f"{outdir}/results.tsv")
    d = {k: derived(rows[k]) for k in order}

    print("| tool | probes | wall s | probes/s | CPU s / 1k probes | peak RSS MiB | ok | exit "
          "| nginx CPU % | other CPU s | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    busy_rows = []
    for k in order:
        r, x = rows[k], d[k]
        probes = num(r["probes"])
        note = r["note"] or ""
        wall = num(r["wall"])
        if x["other"] is not None and wall and k != "hp_soak":
            share = x["other"] / (wall * (os.cpu_count() or 1))
            if share > BUSY_SHARE:
                note = f"BUSY: other work took {share:.0%} of the CPUs" + (f"; {note}" if note else "")
                busy_rows.append(r["label"])
        print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["label"],
            f"{int(probes):,}" if probes is not None else "-",
            r["wall"] or "-",
            fmt(x["rate"], 0),
            fmt(x["cpu1k"], 4),
            fmt(x["rss_mib"], 1),
            f"{int(num(r['ok'])):,}" if num(r["ok"]) is not None else "-",
            r["exit"] or "-",
            fmt(x["nginx_pct"], 0),
            fmt(x["other"], 1),
            note,
        ))

    def g(key, field):
        return d.get(key, {}).get(field)

    checks = []
    hp, wrk, seed, big = "hp_status", "wrk", "seed", "hp_bigc"

    def ratio(a, b):
        return a / b if a is not None and b else None

    # Issue 33's goals (the probe path on async-std's reactor), on a quiet machine.
    t = ratio(g(hp, "rate"), g(wrk, "rate"))
    checks.append(("headprobe / wrk throughput", fmt(t), ">= 0.85", verdict(t, 0.85, ">=")))
    t = ratio(g(hp, "rate"), g(seed, "rate"))
    checks.append(("headprobe / seed (asyncio) throughput", fmt(t), ">= 4", verdict(t, 4, ">=")))
    if "httprobe" in rows:
        t = ratio(g(hp, "rate"), g("httprobe", "rate"))
        checks.append(("headprobe / httprobe throughput", fmt(t), ">= 1.6", verdict(t, 1.6, ">=")))
    t = ratio(g(hp, "cpu1k"), g(wrk, "cpu1k"))
    checks.append(("headprobe / wrk CPU per 1k probes", fmt(t), "<= 1.25", verdict(t, 1.25, "<=")))
    t = g(hp, "rss_mib")
    checks.append(("headprobe peak RSS at -c 256 (MiB)", fmt(t, 1), "<= 16", verdict(t, 16, "<=")))
    if big in rows:
        conc = num(rows[big]["conc"]) or 10000
        rss_kib = num(rows[big]["rss_kib"])
        per = rss_kib / conc if rss_kib is not None and conc else None
        checks.append((f"headprobe peak RSS per in-flight probe at -c {int(conc)} (KiB, RSS/{int(conc)})",
                       fmt(per), "<= 4", verdict(per, 4, "<=")))
        base = num(rows.get(hp, {}).get("rss_kib"))
        base_c = num(rows.get(hp, {}).get("conc")) or 256
        if per is not None and base is not None and conc > base_c:
            marg = (rss_kib - base) / (conc - base_c)
            checks.append(("(info) marginal RSS per extra in-flight probe, -c 256 to -c big (KiB)", fmt(marg), "info", ""))
    try:
        with open(f"{outdir}/checks.tsv") as f:
            for line in f:
                p = line.rstrip("\n").split("\t") + ["", "", "", "", ""]
                checks.append((p[0], p[1], p[2], p[3] + (f" — {p[4]}" if p[4] else "")))
    except FileNotFoundError:
        pass

    print()
    print("nginx CPU %: the one nginx worker's CPU over the row's wall time (100 = one core: the "
          "server is the bottleneck). other CPU s: CPU used by neither the client nor nginx during "
          "the row (other work on the machine, niced processes included; for the soak row it includes the target generator).")
    if busy_rows:
        print()
        print(f"WARNING: other work on the machine took over {BUSY_SHARE:.0%} of the CPUs during: "
              + "; ".join(busy_rows) + ". Those figures are noisy; rerun when the machine is idle.")
    print()
    print("| check | value | target | verdict |")
    print("| --- | ---: | --- | --- |")
    for c in checks:
        print("| {} | {} | {} | {} |".format(*c))


if __name__ == "__main__":
    main()
