#!/usr/bin/env python3
"""Scores `cloudsentinel hunt` on a tree written by simorg.py: benign events alerted on per 10,000
(at low and above, and at informational), per noise source and per rule, and which attack stories
were flagged (an alert at low or above lists one of the story's events).

    python3 benches/noise/score.py --out /tmp/org [--bin target/release/cloudsentinel] [-- HUNT ARGS]

Runs `hunt OUT/AWSLogs --format jsonl --min-level informational --max-evidence 0` (for a
simtenant.py tree, `hunt OUT/azure OUT/gcp`) with the default settings (plus any extra arguments
after `--`) and prints a report; `--json` prints it as JSON. `--max-evidence 0` lists every event
of every alert, so that benign events alerted on are all counted (the default lists 200).
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

LEVELS = ["informational", "low", "medium", "high", "critical"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", default="target/release/cloudsentinel")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--show", type=int, default=3, help="example alerts per rule on benign events")
    ap.add_argument("hunt_args", nargs="*")
    a = ap.parse_args()
    labels = json.load(open(os.path.join(a.out, "labels.json")))
    benign = labels["benign"]
    alerts_path = os.path.join(a.out, "alerts.jsonl")
    started = time.time()
    logs = [os.path.join(a.out, d) for d in labels.get("logs", ["AWSLogs"])]
    cmd = [a.bin, "hunt", *logs, "--format", "jsonl", "--min-level",
           "informational", "--max-evidence", "0", "-o", alerts_path] + a.hunt_args
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - started
    if run.returncode != 0:
        sys.exit(f"hunt failed ({run.returncode}): {run.stderr[-2000:]}")
    alerts = [json.loads(l) for l in open(alerts_path) if l.strip()]
    by_level = {lv: set() for lv in LEVELS}
    rule_hits = collections.Counter()
    rule_sources = collections.defaultdict(collections.Counter)
    examples = collections.defaultdict(list)
    story_of = {}
    for s in labels["stories"]:
        for i in s["event_ids"]:
            story_of[i] = s["name"]
    flagged = collections.defaultdict(set)
    story_alerted = collections.defaultdict(set)
    for al in alerts:
        lv = LEVELS.index(al["level"])
        benign_ids = [i for i in al["event_ids"] if i in benign]
        for i in al["event_ids"]:
            if i in story_of and lv >= 1:
                flagged[story_of[i]].add(al["title"])
                story_alerted[story_of[i]].add(i)
        for i in benign_ids:
            for l in LEVELS[: lv + 1]:
                by_level[l].add(i)
        if benign_ids and lv >= 1:
            key = f"{al['level']}: {al['title']}"
            rule_hits[key] += len(benign_ids)
            for i in benign_ids:
                rule_sources[key][benign[i]] += 1
            if len(examples[key]) < a.show:
                examples[key].append(f"{al['entity']} x{al['count']}: {al['explanation'][:220]}")
    # The steady state: events after the first week (the learning period every routine check
    # and baseline needs), read from the tree's records.
    import datetime as dt
    import glob
    import gzip
    if "late" in labels:
        late = set(labels["late"])
    else:
        end = dt.datetime.fromisoformat(labels["end"])
        cut = (end - dt.timedelta(days=labels["days"] - 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        late = set()
        for path in glob.glob(os.path.join(a.out, "AWSLogs", "**", "*.json.gz"), recursive=True):
            for r in json.load(gzip.open(path))["Records"]:
                if r["eventTime"] >= cut and r["eventID"] in benign:
                    late.add(r["eventID"])
    # Per log, when the simulator says which log each record is in.
    per_log = {}
    logs_of = labels.get("benign_log", {})
    for log in sorted(set(logs_of.values())):
        ids = {i for i, l in logs_of.items() if l == log}
        per_log[log] = {"benign_events": len(ids),
                        "alerted_low_plus_per_10k": round(len(by_level["low"] & ids) * 1e4 / len(ids), 2)}
    # Per provider, when the sources are named "provider/routine".
    providers = {}
    for prov in sorted({s.split("/")[0] for s in benign.values() if "/" in s}):
        ids = {i for i, s in benign.items() if s.startswith(prov + "/")}
        providers[prov] = {"benign_events": len(ids),
                           "alerted_low_plus_per_10k": round(len(by_level["low"] & ids) * 1e4 / len(ids), 2),
                           "alerted_informational_per_10k": round(len(by_level["informational"] & ids) * 1e4 / len(ids), 2)}
    per_source = collections.Counter(benign.values())
    alerted_source = collections.Counter(benign[i] for i in by_level["low"])
    n = len(benign)
    report = {
        "seed": labels["seed"], "days": labels["days"], "benign_events": n,
        "hunt_seconds": round(wall, 1),
        "benign_alerted_per_10k": {l: round(len(by_level[l]) * 1e4 / n, 2) for l in LEVELS},
        "after_first_week": {"benign_events": len(late),
                             "alerted_low_plus_per_10k": round(len(by_level["low"] & late) * 1e4 / max(1, len(late)), 2)},
        "per_source": {s: {"events": c, "alerted_low_plus": alerted_source.get(s, 0)} for s, c in sorted(per_source.items())},
        "rules_on_benign_low_plus": [{"rule": k, "events": v, "sources": dict(rule_sources[k]), "examples": examples[k]}
                                     for k, v in rule_hits.most_common()],
        "per_provider": providers,
        "per_log": per_log,
        "stories": [{"name": s["name"], "events": len(s["event_ids"]), "flagged": bool(flagged[s["name"]]),
                     "events_in_alerts": len(story_alerted[s["name"]]),
                     "by": sorted(flagged[s["name"]])} for s in labels["stories"]],
    }
    report["stories_flagged"] = f"{sum(1 for s in report['stories'] if s['flagged'])}/{len(report['stories'])}"
    if a.json:
        print(json.dumps(report, indent=1))
        return
    print(f"seed {report['seed']}: {n} benign events over {report['days']} days; hunt {wall:.1f}s")
    print("benign events alerted per 10k: " + ", ".join(f"{l}+ {v}" for l, v in report["benign_alerted_per_10k"].items()))
    print(f"after the first week: {len(late)} benign events, {report['after_first_week']['alerted_low_plus_per_10k']} alerted per 10k at low+")
    for prov, v in providers.items():
        print(f"  {prov}: {v['benign_events']} benign events, {v['alerted_low_plus_per_10k']} alerted per 10k at low+, {v['alerted_informational_per_10k']} at informational+")
    for log, v in per_log.items():
        print(f"    {log:20} {v['benign_events']:>7} benign events, {v['alerted_low_plus_per_10k']} alerted per 10k at low+")
    print("per noise source (events, alerted at low+):")
    for s, v in report["per_source"].items():
        print(f"  {s:24} {v['events']:>7} {v['alerted_low_plus']:>6}")
    print("rules alerting on benign events (low+):")
    for r in report["rules_on_benign_low_plus"]:
        print(f"  {r['events']:>6}  {r['rule']}  {dict(r['sources'])}")
        for e in r["examples"]:
            print(f"            e.g. {e}")
    print(f"stories flagged: {report['stories_flagged']}")
    for s in report["stories"]:
        print(f"  {'YES' if s['flagged'] else 'no ':3} {s['name']:28} ({s['events_in_alerts']} of {s['events']} events in alerts) {'; '.join(s['by'])}")


if __name__ == "__main__":
    main()
