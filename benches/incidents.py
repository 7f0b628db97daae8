#!/usr/bin/env python3
"""How the service groups the demo's alerts into incidents: per attack story, the incidents its
alerts (at low and above) fall in; and how many incidents hold a single alert.

    cloudsentinel demo --load-only --data-dir D [--seed N]
    cloudsentinel generate --scenario 10 --stealth 3 --seed N --out S     # the same scenario's stories
    python3 benches/incidents.py --db D/cloudsentinel.db --stories S/stories.jsonl [--json]

(`demo` uses 10 days and 3 behaviour-only stories by default, like the generate line above.)
"""

import argparse
import collections
import json
import sqlite3

LEVELS = ["informational", "low", "medium", "high", "critical"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--stories", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    stories = [json.loads(l) for l in open(a.stories) if l.strip()]
    story_of = {}
    for s in stories:
        for i in s["event_ids"]:
            story_of[i] = s["name"]
    c = sqlite3.connect(a.db)
    incidents = {r[0]: {"id": r[0], "title": r[1], "entity": r[2], "alerts": r[3]}
                 for r in c.execute("select id, title, entity, alert_count from incidents")}
    per_story = collections.defaultdict(set)
    incident_stories = collections.defaultdict(set)
    unassigned = collections.Counter()
    for rule, title, level, event_ids, incident in c.execute(
            "select rule_id, title, level, event_ids, incident_id from alerts"):
        ids = json.loads(event_ids) if event_ids.startswith("[") else event_ids.split(",")
        names = {story_of[i] for i in ids if i in story_of}
        if (level if isinstance(level, int) else LEVELS.index(level)) < 1:
            continue
        for n in names:
            if incident is None:
                unassigned[n] += 1
            else:
                per_story[n].add(incident)
                incident_stories[incident].add(n)
    single = sum(1 for i in incidents.values() if i["alerts"] == 1)
    report = {
        "incidents": len(incidents),
        "single_alert_incidents": single,
        "single_alert_share": round(single / max(1, len(incidents)), 3),
        "stories": [{"name": s["name"], "incidents": sorted(per_story[s["name"]]),
                     "alerts_without_incident": unassigned[s["name"]]} for s in stories],
        "incidents_without_story": sorted(i for i in incidents if i not in incident_stories),
        "incidents_with_several_stories": {i: sorted(v) for i, v in incident_stories.items() if len(v) > 1},
    }
    if a.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{report['incidents']} incidents, {single} with a single alert ({report['single_alert_share']:.0%})")
    for s in report["stories"]:
        print(f"  {s['name']:32} incidents {s['incidents']}" + (f", {s['alerts_without_incident']} alerts in none" if s["alerts_without_incident"] else ""))
    for i in report["incidents_without_story"]:
        inc = incidents[i]
        print(f"  no story: incident {i} ({inc['alerts']} alerts) {inc['title']} [{inc['entity']}]")
    for i, v in report["incidents_with_several_stories"].items():
        print(f"  incident {i} holds several stories: {v}")


if __name__ == "__main__":
    main()
