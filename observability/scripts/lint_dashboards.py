#!/usr/bin/env python3
"""Keeps grafana/ honest without a running Grafana.

Provisioning (grafana/provisioning/):
- datasources.yml defines each data source once, with a uid and a type, and
  includes the `prometheus` and `jaeger` uids the dashboards rely on;
- dashboards.yml has a file provider loading /var/lib/grafana/dashboards into
  the folder "Shop".

Every dashboard (grafana/dashboards/*.json):
- is valid JSON with a uid and a title, both unique across dashboards; no
  import inputs (`__inputs`, `${DS_...}`), no fixed `id`; schemaVersion of
  Grafana 11 or later;
- every data source it names (panels, targets, template variables) is a uid
  defined in datasources.yml, and PromQL targets point at a prometheus one;
  targets of the VictoriaLogs data source hold LogsQL, which `cargo xtask e2e`
  runs against the stack's log store;
- every panel except rows has a title, a description, a grid position inside
  the 24 columns (not overlapping another panel) and at least one target with
  a PromQL or LogsQL expression; timeseries, stat, gauge and bar gauge panels
  set a unit;
- every template variable it references ($var, ${var}, [[var]]) is defined
  in the dashboard or is one of Grafana's built-in `__` variables;
- every Jaeger search link passes the time range as Jaeger wants it
  (start=${__from}000, end=${__to}000 in microseconds, lookback=custom), and
  the dashboard has at least one such link;
- every metric name in an expression (panel targets, `label_values(...)` and
  `query_result(...)` variable queries) is a recording rule from
  observability/prometheus/rules/*.yml, a metric registered in the Rust
  sources (services/**/*.rs: counter_vec/counter/histogram_vec/Opts::new/
  IntGauge::new/...; histograms as _bucket/_sum/_count), or one of the
  external metrics listed below (process collector, Prometheus itself, the
  load tester, the nginx exporter), or a name the Cassandra nodes' JMX
  exporter rules give (observability/cassandra/jmx-exporter.yaml).

Finally every expression, template variables replaced by concrete values, is
parsed by promtool: promtool 2.42 has no "check expression" command, so the
expressions become recording rules in a temporary file for
`promtool check rules`. --skip-promtool leaves that step out.

The Jaeger data source's tracesToMetrics queries are checked like panel
expressions. Exit status 1 on any problem.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
RULES = os.path.join(ROOT, "observability", "prometheus", "rules")
SERVICES = os.path.join(ROOT, "services")
GRAFANA = os.path.join(ROOT, "grafana")
DASHBOARDS = os.path.join(GRAFANA, "dashboards")
DATASOURCES = os.path.join(GRAFANA, "provisioning", "datasources", "datasources.yml")
PROVIDERS = os.path.join(GRAFANA, "provisioning", "dashboards", "dashboards.yml")
JMX_EXPORTER = os.path.join(ROOT, "observability", "cassandra", "jmx-exporter.yaml")

DASHBOARD_PATH = "/var/lib/grafana/dashboards"
FOLDER = "Shop"
MIN_SCHEMA_VERSION = 39  # Grafana 11.0
REQUIRED_DATASOURCES = {"prometheus", "jaeger", "victorialogs"}
LOGS_DATASOURCE = "victoriametrics-logs-datasource"
BUILTIN_DATASOURCES = {"-- Grafana --", "-- Mixed --", "-- Dashboard --"}

# Metrics that do not come from services/**/*.rs.
EXTERNAL_METRICS = {
    # Prometheus itself
    "up", "ALERTS", "ALERTS_FOR_STATE",
    # prometheus crate 0.14, process_collector (registered in telemetry/metrics.rs)
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
    "process_virtual_memory_bytes", "process_resident_memory_bytes",
    "process_start_time_seconds", "process_threads",
    # load tester (job loadtester)
    "loadtest_requests_total", "loadtest_users",
    # nginx-prometheus-exporter (job gateway)
    "nginx_up", "nginx_connections_active", "nginx_connections_accepted",
    "nginx_connections_handled", "nginx_connections_reading",
    "nginx_connections_writing", "nginx_connections_waiting", "nginx_http_requests_total",
}
EXTERNAL_HISTOGRAMS = {"loadtest_request_duration_seconds"}

# A metric registered in Rust: the helper or constructor, an optional first
# argument (the registry), then the name as a string literal.
REGISTRATION = re.compile(
    r"\b(counter_vec|counter|histogram_vec|gauge_vec|gauge|"
    r"IntGauge::new|IntCounter::new|Gauge::new|Counter::new|Opts::new|HistogramOpts::new)"
    r"\(\s*(?:&?[\w.]+\s*,\s*)?\"([a-zA-Z_:][a-zA-Z0-9_:]*)\""
)
HISTOGRAM_REGISTRATIONS = {"histogram_vec", "HistogramOpts::new"}

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "inf", "nan", "start", "end",
}
VARIABLE_REF = re.compile(r"\$(\w+)|\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]")
BUILTIN_VALUES = {
    "__rate_interval": "5m", "__interval": "1m", "__range": "1h",
    "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000",
}
UNIT_PANELS = {"timeseries", "stat", "gauge", "bargauge"}


def jmx_exporter_metrics():
    """The names the JMX exporter's rules give the Cassandra nodes' metrics."""
    with open(JMX_EXPORTER) as f:
        rules = yaml.safe_load(f)["rules"]
    return {rule["name"] for rule in rules if "name" in rule}


def known_metrics():
    names = set(EXTERNAL_METRICS) | jmx_exporter_metrics()
    for h in EXTERNAL_HISTOGRAMS:
        names.update(h + s for s in ("_bucket", "_sum", "_count"))
    found = 0
    for path in glob.glob(os.path.join(SERVICES, "**", "*.rs"), recursive=True):
        if os.sep + "tests" + os.sep in path:
            continue
        with open(path) as f:
            text = f.read()
        for call, name in REGISTRATION.findall(text):
            found += 1
            if call in HISTOGRAM_REGISTRATIONS:
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
    return names, found


def recording_rules():
    names = set()
    for path in sorted(glob.glob(os.path.join(RULES, "*.yml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    names.add(rule["record"])
    return names


def metric_names(expr):
    """Metric names in a PromQL expression, without a full parser."""
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\{[^{}]*\}", " ", s)                      # label matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)                    # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?\w+", " ", s)
    out = set()
    for m in re.finditer(r"(?<![\w.:])[a-zA-Z_:][\w:]*", s):
        name = m.group(0)
        if s[m.end():].lstrip().startswith("("):           # a function or aggregation
            continue
        if name.lower() in PROMQL_KEYWORDS:
            continue
        out.add(name)
    return out


def variable_refs(text):
    return {a or b or c for a, b, c in VARIABLE_REF.findall(text)}


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        return m.group(0)
    return VARIABLE_REF.sub(repl, expr)


def variable_query_expr(query):
    """The PromQL inside a Prometheus template-variable query, or None."""
    if isinstance(query, dict):
        query = query.get("query", "")
    q = (query or "").strip()
    m = re.fullmatch(r"label_values\((.*)\)", q, re.S)
    if m:
        inner = m.group(1)
        depth, cut = 0, -1
        for i, ch in enumerate(inner):
            if ch in "{(":
                depth += 1
            elif ch in "})":
                depth -= 1
            elif ch == "," and depth == 0:
                cut = i
        return inner[:cut].strip() if cut >= 0 else None
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return m.group(1).strip()
    return None


def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def walk_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)


def load_datasources(errors):
    with open(DATASOURCES) as f:
        doc = yaml.safe_load(f)
    uids = {}
    for ds in doc.get("datasources", []):
        uid, typ = ds.get("uid"), ds.get("type")
        if not uid or not typ:
            errors.append(f"datasources.yml: {ds.get('name')!r} needs a uid and a type")
            continue
        if uid in uids:
            errors.append(f"datasources.yml: uid {uid!r} defined twice")
        uids[uid] = typ
    for uid in sorted(REQUIRED_DATASOURCES - set(uids)):
        errors.append(f"datasources.yml: no data source with uid {uid!r}")
    return doc, uids


def check_providers(errors):
    with open(PROVIDERS) as f:
        doc = yaml.safe_load(f)
    ok = any(p.get("type", "file") == "file"
             and (p.get("options") or {}).get("path") == DASHBOARD_PATH
             and p.get("folder") == FOLDER
             for p in doc.get("providers", []))
    if not ok:
        errors.append(f"dashboards.yml: no file provider loading {DASHBOARD_PATH} into folder {FOLDER!r}")


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_dashboard(path, board, ds_uids, metrics, records, exprs, errors):
    name = os.path.relpath(path, ROOT)
    err = lambda msg: errors.append(f"{name}: {msg}")  # noqa: E731
    uid = board.get("uid")

    if "__inputs" in board or any("${DS_" in s for s in walk_strings(board)):
        err("uses import inputs (__inputs / ${DS_...}); refer to data sources by uid")
    if board.get("id") is not None:
        err("has a fixed id; provisioned dashboards need \"id\": null")
    if not isinstance(board.get("schemaVersion"), int) or board["schemaVersion"] < MIN_SCHEMA_VERSION:
        err(f"schemaVersion {board.get('schemaVersion')!r} is older than Grafana 11 ({MIN_SCHEMA_VERSION})")

    def check_ds(where, ds, want_type=None):
        if ds is None:
            return
        if isinstance(ds, str):                       # legacy: a data source name or uid
            err(f"{where}: data source given as a string {ds!r}; use {{\"type\", \"uid\"}}")
            return
        uid_ = ds.get("uid")
        if uid_ in BUILTIN_DATASOURCES:
            return
        if uid_ not in ds_uids:
            err(f"{where}: data source uid {uid_!r} is not provisioned in datasources.yml")
        elif want_type and ds_uids[uid_] != want_type:
            err(f"{where}: data source {uid_!r} is a {ds_uids[uid_]}, not {want_type}")

    # template variables: names, values for promtool, their own queries
    variables = board.get("templating", {}).get("list", [])
    defined = {v.get("name") for v in variables}
    values = dict(BUILTIN_VALUES)
    for v in variables:
        cur = (v.get("current") or {}).get("value")
        if isinstance(cur, list):
            cur = cur[0] if cur else None
        if cur in (None, "", "$__all"):
            cur = v.get("allValue") or (".*" if v.get("includeAll") else None)
        if cur is None and v.get("type") in ("textbox", "constant", "custom", "interval"):
            cur = str(v.get("query", "")).split(",")[0].strip() or None
        values[v["name"]] = cur if cur is not None else "x"
    for v in variables:
        where = f"variable ${v.get('name')}"
        if v.get("type") == "query":
            check_ds(where, v.get("datasource"), "prometheus")
            expr = variable_query_expr(v.get("query"))
            if expr:
                exprs.append((uid, where, expr, substitute(expr, values)))

    for ref in sorted(set().union(*(variable_refs(s) for s in walk_strings(board))) - defined):
        if not ref.startswith("__"):
            err(f"references ${ref}, which is not a template variable of this dashboard")

    # panels
    ids, boxes, npanels = set(), [], 0
    for p in all_panels(board.get("panels")):
        title = p.get("title") or ""
        where = f"panel {p.get('id')} {title!r}"
        if p.get("id") in ids:
            err(f"{where}: duplicate panel id")
        ids.add(p.get("id"))
        gp = p.get("gridPos") or {}
        if not all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")) or gp["x"] + gp["w"] > 24:
            err(f"{where}: gridPos missing or wider than 24 columns")
        else:
            for other_where, other in boxes:
                if overlaps(gp, other):
                    err(f"{where}: overlaps {other_where}")
            boxes.append((where, gp))
        if p.get("type") == "row":
            continue
        npanels += 1
        if not title:
            err(f"{where}: no title")
        if not (p.get("description") or "").strip():
            err(f"{where}: no description")
        if p.get("type") in UNIT_PANELS and not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            err(f"{where}: no unit")
        check_ds(where, p.get("datasource"))
        targets = [t for t in p.get("targets", []) if not t.get("hide")]
        with_expr = [t for t in targets if (t.get("expr") or "").strip()]
        if not with_expr:
            err(f"{where}: no target with a PromQL or LogsQL expression")
        promql = []
        for t in targets:
            tds = t.get("datasource") or p.get("datasource")
            logsql = isinstance(tds, dict) and tds.get("type") == LOGS_DATASOURCE
            want = LOGS_DATASOURCE if logsql else "prometheus" if "expr" in t else None
            check_ds(f"{where} target {t.get('refId')}", tds, want)
            if t in with_expr and not logsql:
                promql.append(t)
        for t in promql:
            exprs.append((uid, f"{where} target {t.get('refId')}", t["expr"], substitute(t["expr"], values)))

    # Jaeger search links: microsecond time range, and at least one per dashboard
    jaeger_links = [s for s in walk_strings(board) if "/search?" in s and "service=" in s]
    if not jaeger_links:
        err("has no link to a Jaeger trace search")
    for url in jaeger_links:
        for part in ("start=${__from}000", "end=${__to}000", "lookback=custom"):
            if part not in url:
                err(f"Jaeger link without {part}: {url}")
    return npanels


def check_metrics(exprs, metrics, records, errors):
    for uid, where, raw, concrete in exprs:
        for name in sorted(metric_names(concrete)):
            if name not in metrics and name not in records:
                errors.append(f"{uid}: {where}: unknown metric or recording rule {name!r} in: {raw}")


def run_promtool(exprs, errors):
    groups = {}
    for i, (uid, where, raw, concrete) in enumerate(exprs):
        record = "dashboard_lint:" + re.sub(r"[^a-zA-Z0-9_]", "_", f"{uid}_{i}") + ":expr"
        groups.setdefault(uid, []).append({"record": record, "expr": concrete})
    doc = {"groups": [{"name": f"lint {uid}", "rules": rules} for uid, rules in groups.items()]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard_expressions.yml")
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False, width=1000)
        try:
            res = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        except FileNotFoundError:
            errors.append("promtool not found (run .ci/install-observability.sh, or pass --skip-promtool)")
            return
        if res.returncode != 0:
            index = {r["record"]: (uid, where, raw) for (uid, where, raw, _), r in
                     zip(exprs, [r for g in doc["groups"] for r in g["rules"]])}
            out = (res.stdout + res.stderr).strip()
            hits = [f"{u}: {w}: promtool rejects: {raw}" for rec, (u, w, raw) in index.items() if rec in out]
            errors.extend(hits or [])
            errors.append("promtool check rules failed:\n" + "\n".join("    " + l for l in out.splitlines()))


def main():
    skip_promtool = "--skip-promtool" in sys.argv[1:]
    errors = []
    ds_doc, ds_uids = load_datasources(errors)
    check_providers(errors)
    metrics, registrations = known_metrics()
    if registrations == 0:
        errors.append(f"found no metric registrations in {SERVICES}; has the Rust code changed shape?")
    records = recording_rules()

    exprs = []
    # Jaeger -> Prometheus queries in the data source provisioning.
    for ds in ds_doc.get("datasources", []):
        for q in ((ds.get("jsonData") or {}).get("tracesToMetrics") or {}).get("queries", []):
            expr = q.get("query", "").replace("$$", "$")
            concrete = expr.replace("$__tags", 'service="backend"')
            exprs.append(("datasources", f"{ds.get('uid')} tracesToMetrics {q.get('name')!r}", expr, concrete))

    paths = sorted(glob.glob(os.path.join(DASHBOARDS, "*.json")))
    if not paths:
        errors.append(f"no dashboards in {DASHBOARDS}")
    uids, titles, npanels = {}, {}, 0
    for path in paths:
        try:
            with open(path) as f:
                board = json.load(f)
        except ValueError as e:
            errors.append(f"{os.path.relpath(path, ROOT)}: not valid JSON: {e}")
            continue
        uid, title = board.get("uid"), board.get("title")
        if not uid or not re.fullmatch(r"[a-z0-9-]{1,40}", uid):
            errors.append(f"{os.path.relpath(path, ROOT)}: uid {uid!r} missing or not a short lower-case name")
        if not title:
            errors.append(f"{os.path.relpath(path, ROOT)}: no title")
        for key, seen in ((uid, uids), (title, titles)):
            if key in seen:
                errors.append(f"{os.path.relpath(path, ROOT)}: {key!r} also used by {seen[key]}")
            seen[key] = os.path.relpath(path, ROOT)
        npanels += check_dashboard(path, board, ds_uids, metrics, records, exprs, errors)

    check_metrics(exprs, metrics, records, errors)
    if not skip_promtool and exprs:
        run_promtool(exprs, errors)

    for e in errors:
        print(f"  {e}")
    promtool_note = "" if not skip_promtool else " (promtool skipped)"
    print(f"lint: {len(paths)} dashboards, {npanels} panels, {len(exprs)} expressions checked"
          f"{promtool_note}, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
