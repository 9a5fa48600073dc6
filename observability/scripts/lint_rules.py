#!/usr/bin/env python3
"""Conventions promtool does not check, for rules/alerts.yml and tests/*.yml.

- every alert has severity critical|warning|info and the annotations
  summary, description and runbook_url = /docs/playbooks/<kebab-name>/;
- every alert has at least one unit test where it fires and one where it
  does not (exp_alerts: []);
- every recording rule name has the level:metric:operations form.
Exit status 1 on any violation.
"""
import glob
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PROM = os.path.join(HERE, "..", "prometheus")
SEVERITIES = {"critical", "warning", "info"}


def kebab(name):
    # High5xxRatio -> high-5xx-ratio, CheckoutSLOFastBurn -> checkout-slo-fast-burn
    s = re.sub(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[0-9])(?=[A-Z])", "-", name)
    s = re.sub(r"(?<=[a-z])(?=[0-9])", "-", s)
    return s.lower()


def main():
    errors = []
    alerts = []
    for path in sorted(glob.glob(os.path.join(PROM, "rules", "*.yml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    if len(rule["record"].split(":")) != 3:
                        errors.append(f"{rule['record']}: not level:metric:operations")
                    continue
                name = rule["alert"]
                alerts.append(name)
                sev = rule.get("labels", {}).get("severity")
                if sev not in SEVERITIES:
                    errors.append(f"{name}: severity {sev!r} not in {sorted(SEVERITIES)}")
                ann = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    if not ann.get(key):
                        errors.append(f"{name}: missing annotation {key}")
                want = f"/docs/playbooks/{kebab(name)}/"
                if ann.get("runbook_url") != want:
                    errors.append(f"{name}: runbook_url {ann.get('runbook_url')!r}, want {want!r}")

    firing, quiet = set(), set()
    for path in sorted(glob.glob(os.path.join(PROM, "tests", "*.yml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    for name in alerts:
        if name not in firing:
            errors.append(f"{name}: no unit test where it fires")
        if name not in quiet:
            errors.append(f"{name}: no unit test where it stays quiet")

    for e in errors:
        print(f"  {e}")
    print(f"lint: {len(alerts)} alerts checked, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
