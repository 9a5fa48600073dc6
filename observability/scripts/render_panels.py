#!/usr/bin/env python3
"""Renders pictures of Grafana panels from their own PromQL, without Grafana.

There is no Grafana on the development machines, so the pictures in
docs/dashboards.md are drawn by this script: it reads the dashboards in
grafana/dashboards/*.json, takes a chosen set of timeseries (and stat) panels,
replaces the template variables in their targets, asks a running Prometheus for
each target over the last few minutes (`/api/v1/query_range`) and draws the
series with matplotlib, one PNG per panel:

    docs/images/dashboards/<dashboard uid>/<panel title as a slug>.png

What is kept from the panel: the title, the unit (in the axis label and the
ticks), the legend (`legendFormat` with `{{label}}` filled in), the field
overrides for unit, right-hand axis and fixed colour, `min`/`max`, and the
thresholds drawn as dashed lines when the panel shows them. The result is a
picture of the same numbers the panel shows, not a screenshot of Grafana.

Template variables: `$__rate_interval` becomes `--rate-interval` (1m),
`$__interval` the step, `$__range` the window; a multi-value or "All" variable
becomes its `allValue` (`.*`), a text box its text, and any other variable its
saved current value. `--var name=value` sets one (the default set renders
*Shop / Service* for `cart-service`).

Usage (normally through render-panels.sh, which brings matplotlib):
    render_panels.py                      # the default set, last 5 minutes
    render_panels.py --list               # every panel that can be rendered
    render_panels.py --panel shop-slo/burn-rate-by-window --var service=backend
    render_panels.py --all --out /tmp/panels
Options: --prometheus URL (http://127.0.0.1:9090), --minutes N (5), --end UNIX_TIME
(now), --step S (15),
--max-series N (10; the rest are left out, said in the picture), --allow-empty.

Exit status 1 when Prometheus cannot be reached or a chosen panel has no data
at all (its picture is then not written), unless --allow-empty.
"""
import argparse
import datetime as dt
import glob
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DASHBOARDS = os.path.join(ROOT, "grafana", "dashboards")
OUT = os.path.join(ROOT, "docs", "images", "dashboards")

# The pictures docs/dashboards.md shows: (dashboard uid, panel title, variables).
DEFAULT_SET = [
    ("shop-overview", "Request rate per service", {}),
    ("shop-overview", "Load tester vs services", {}),
    ("shop-overview", "Latency p95 per service", {}),
    ("shop-overview", "Load tester: virtual users and p95 per scenario", {}),
    ("shop-service", "Request rate by route", {"service": "cart-service"}),
    ("shop-service", "Responses by status", {"service": "cart-service"}),
    ("shop-service", "Latency p95 by route", {"service": "cart-service"}),
    ("shop-database", "Operations by statement", {}),
    ("shop-database", "p95 latency by statement", {}),
    ("shop-business", "Checkouts by outcome", {}),
    ("shop-business", "Orders by status", {}),
    ("shop-business", "Credential stuffing: failed logins", {}),
    ("shop-slo", "Burn rate by window", {}),
    ("shop-slo", "Checkout route latency (cart-service)", {}),
    ("shop-gateway", "Gateway vs load tester vs services", {}),
    ("shop-gateway", "Connections by state", {}),
]

RENDERABLE = {"timeseries", "stat"}

# Distinct colours in a fixed order (matplotlib's tab10 with red last, then darker
# shades); a colour a panel fixes for one series is not given to another.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#d62728", "#0a437c", "#c15c17",
           "#3f6833", "#584477", "#967302", "#890f02"]
NAMED_COLORS = {"red": "#E02F44", "green": "#56A64B", "yellow": "#F2CC0C",
                "orange": "#FF9830", "blue": "#3274D9", "purple": "#A352CC",
                "dark-red": "#AD0317", "dark-green": "#19730E"}

FIG_W, FIG_H, DPI = 9.0, 3.6, 100


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def duration(seconds):
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# ---------------------------------------------------------------- dashboards

def load_dashboards():
    boards = {}
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        boards[board["uid"]] = board
    return boards


def panels(board):
    """Every panel that is not a row, rows' children included, in order."""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def find_panel(board, key):
    for panel in panels(board):
        if panel.get("title") == key or slug(panel.get("title", "")) == key:
            return panel
    return None


def variable_values(board, overrides, window, step, rate_interval):
    values = {"__rate_interval": rate_interval, "__interval": duration(step),
              "__range": duration(window)}
    for var in board.get("templating", {}).get("list", []):
        name = var["name"]
        if name in overrides:
            values[name] = overrides[name]
        elif var.get("type") == "textbox":
            values[name] = var.get("query", "")
        elif var.get("includeAll") or var.get("multi"):
            values[name] = var.get("allValue") or ".*"
        else:
            current = var.get("current", {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else ""
            values[name] = ".*" if current in (None, "", "$__all") else current
    for name, value in overrides.items():
        values.setdefault(name, value)
    return values


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return values.get(name, m.group(0))
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


# ---------------------------------------------------------------- Prometheus

def query_range(prometheus, expr, start, end, step):
    params = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)})
    url = f"{prometheus.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as err:
        body = json.load(err)
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}") from None
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


def legend(fmt, metric):
    if not fmt or fmt == "__auto":
        name = metric.get("__name__", "")
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
        return f"{name}{{{labels}}}" if labels or not name else name
    return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


# ---------------------------------------------------------------- units

def unit_spec(unit, peak):
    """(axis label, scale, tick format) for a Grafana unit and the largest value."""
    unit = unit or "short"
    if unit == "s":
        if peak < 1:
            return "latency (ms)", 1000.0, "{:g}"
        return "seconds", 1.0, "{:g}"
    if unit == "ms":
        return "milliseconds", 1.0, "{:g}"
    if unit == "percentunit":
        return "percent", 100.0, "{:g}%"
    if unit == "percent":
        return "percent", 1.0, "{:g}%"
    if unit == "bytes":
        return "MiB", 1.0 / 2**20, "{:g}"
    if unit == "reqps":
        return "requests/s", 1.0, "{:g}"
    if unit == "ops":
        return "per second", 1.0, "{:g}"
    if unit == "cps":
        return "connections/s", 1.0, "{:g}"
    if unit == "currencyUSD":
        return "USD", 1.0, "${:g}"
    if unit.startswith("suffix:"):
        suffix = unit[len("suffix:"):]
        return f"burn rate ({suffix})" if suffix == "×" else suffix, 1.0, "{:g}" + suffix
    if unit in ("short", "none"):
        return "count", 1.0, "{:g}"
    return "", 1.0, "{:g}"


def override_props(panel, name):
    props = {}
    for ov in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = ov.get("matcher", {})
        option = matcher.get("options", "")
        if matcher.get("id") == "byName" and option == name:
            hit = True
        elif matcher.get("id") == "byRegexp":
            hit = re.fullmatch(option, name) is not None
        else:
            hit = False
        if hit:
            for prop in ov.get("properties", []):
                props[prop["id"]] = prop.get("value")
    return props


def color_of(value):
    if isinstance(value, dict):
        value = value.get("fixedColor")
    if not value:
        return None
    return NAMED_COLORS.get(value, value)


# ---------------------------------------------------------------- rendering

def collect(panel, values, prometheus, start, end, step):
    """[(name, [(t, v)], props)] for every series of every target."""
    series = []
    for target in panel.get("targets", []):
        if target.get("hide") or not target.get("expr"):
            continue
        expr = substitute(target["expr"], values)
        for result in query_range(prometheus, expr, start, end, step):
            points = []
            for t, v in result["values"]:
                v = float(v)
                points.append((float(t), v if math.isfinite(v) else math.nan))
            name = legend(target.get("legendFormat"), result["metric"]).strip()
            if not name:  # e.g. '{{service}}' on a series without that label
                name = legend(None, result["metric"]) or expr
            series.append((name, points, override_props(panel, name)))
    return series


def render(panel, board, series, path, window_start, window_end, max_series, note):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    base_unit = defaults.get("unit")

    def finite(points):
        return [v for _, v in points if not math.isnan(v)]

    total = len(series)
    if total > max_series:
        def weight(s):
            vals = finite(s[1])
            return sum(vals) / len(vals) if vals else -math.inf
        series = sorted(series, key=weight, reverse=True)[:max_series]

    # One axis per unit: the panel's, and a right-hand one for overridden series.
    groups = {"left": [], "right": []}
    for name, points, props in series:
        side = "right" if props.get("custom.axisPlacement") == "right" else "left"
        groups[side].append((name, points, props.get("unit", base_unit), props))

    legend_rows = max(1, math.ceil(len(series) / columns_for(series)))
    height = FIG_H + max(0, legend_rows - 3) * 0.2
    fig, ax_left = plt.subplots(figsize=(FIG_W, height), dpi=DPI)
    axes = {"left": ax_left}
    if groups["right"]:
        axes["right"] = ax_left.twinx()

    fixed = {color_of(props.get("color")) for _, _, props in series} - {None}
    palette = [c for c in PALETTE if c not in fixed and not (
        "#E02F44" in fixed and c == "#d62728") and not ("#56A64B" in fixed and c == "#2ca02c")]
    color_index = 0
    handles = []
    thresholds_out = ""
    for side in ("left", "right"):
        items = groups[side]
        if not items:
            continue
        ax = axes[side]
        unit = items[0][2]
        peak = max((max(finite(p), default=0) for _, p, _, _ in items), default=0)
        low = min((min(finite(p), default=0) for _, p, _, _ in items), default=0)
        label, scale, fmt = unit_spec(unit, peak)
        for name, points, _unit, props in items:
            color = color_of(props.get("color"))
            if color is None:
                color = palette[color_index % len(palette)]
                color_index += 1
            times = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t, _ in points]
            vals = [v * scale for _, v in points]
            style = "--" if side == "right" else "-"
            (line,) = ax.plot(times, vals, style, color=color, linewidth=1.6, label=name)
            handles.append(line)
        if label in ("", "count") and len(items) == 1:
            label = items[0][0]
        ax.set_ylabel(label)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos, f=fmt: f.format(round(v, 6))))

        top = peak * scale
        bottom = min(0.0, low * scale)
        if side == "left":
            thresholds_out = draw_thresholds(ax, defaults, scale, top, bottom)
        if defaults.get("min") is not None and side == "left":
            bottom = defaults["min"] * scale
        # thresholds drawn above are part of the autoscaled limit, as in Grafana
        lim_top = max(ax.get_ylim()[1], top * 1.08, 1e-9 if top > 0 else 1.0)
        if defaults.get("max") is not None and side == "left":
            lim_top = max(defaults["max"] * scale, top * 1.02)
        if side == "right":  # headroom, so that the two axes' lines do not sit on each other
            lim_top = max(lim_top, top * 1.35)
        ax.set_ylim(bottom, lim_top)

    ax_left.set_xlim(dt.datetime.fromtimestamp(window_start, dt.timezone.utc),
                     dt.datetime.fromtimestamp(window_end, dt.timezone.utc))
    ax_left.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=dt.timezone.utc))
    ax_left.set_xlabel("time (UTC)")
    ax_left.grid(True, color="#dddddd", linewidth=0.6)
    for ax in axes.values():
        ax.tick_params(labelsize=8)
        for spine in ("top",):
            ax.spines[spine].set_visible(False)

    title = f"{board['title']} › {panel['title']}"
    ax_left.set_title(title, loc="left", fontsize=11, fontweight="bold")
    notes = []
    if note:
        notes.append(note)
    if total > len(series):
        notes.append(f"top {len(series)} of {total} series by mean")
    if thresholds_out:
        notes.append(thresholds_out)
    if notes:
        ax_left.set_title("; ".join(notes), loc="right", fontsize=8, color="#555555")

    footer = 0.17 / height
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.01, footer),
               ncol=columns_for(series), fontsize=8, frameon=False,
               handlelength=1.8, columnspacing=1.5)
    legend_h = (legend_rows * 0.19 + 0.12) / height + footer
    fig.text(0.995, 0.005, f"PromQL of panel {panel['id']} in {board['uid']}, "
             "queried from Prometheus; not a Grafana screenshot",
             ha="right", va="bottom", fontsize=6.5, color="#888888")
    fig.tight_layout(rect=(0, legend_h, 1, 1))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def columns_for(series):
    """Legend columns that fit the figure's width: about 5.2 px a character at 8 pt."""
    longest = max((len(s[0]) for s in series), default=10)
    return max(1, min(6, int((FIG_W * DPI - 20) // (longest * 5.2 + 45))))


def draw_thresholds(ax, defaults, scale, top, bottom):
    """Dashed threshold lines, like Grafana's thresholdsStyle. A threshold far above the
    data (more than 4× its peak) would flatten it: it is named instead of drawn."""
    style = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
    if style == "off":
        return ""
    unit = defaults.get("unit")
    far = []
    for step in defaults.get("thresholds", {}).get("steps", []):
        value = step.get("value")
        if value is None:
            continue
        scaled = value * scale
        if top > 0 and scaled > 4 * top:
            far.append(scaled)
            continue
        ax.axhline(scaled, color=color_of(step.get("color")) or "#E02F44",
                   linestyle="--", linewidth=1.0, alpha=0.8)
    if not far:
        return ""
    if unit == "s":
        suffix = " ms" if scale == 1000 else " s"
    elif unit in ("percentunit", "percent") or (unit or "").startswith("suffix:"):
        suffix = ""
    else:
        suffix = " " + unit_spec(unit, top)[0]
    fmt = unit_spec(unit, top / scale if scale else top)[2]
    shown = ", ".join(fmt.format(round(v, 6)) for v in far)
    return f"threshold {shown}{suffix.rstrip()} above the data"


# ---------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the window")
    parser.add_argument("--end", type=float, help="end of the window, Unix seconds (default: now)")
    parser.add_argument("--step", type=int, default=15, help="seconds between points")
    parser.add_argument("--rate-interval", default="1m", help="value of $__rate_interval")
    parser.add_argument("--out", default=OUT, help="directory for <uid>/<slug>.png")
    parser.add_argument("--panel", action="append", default=[],
                        help="uid/title-or-slug to render instead of the default set")
    parser.add_argument("--var", action="append", default=[],
                        help="name=value for a template variable, for every panel")
    parser.add_argument("--all", action="store_true", help="every timeseries and stat panel")
    parser.add_argument("--list", action="store_true", help="list renderable panels and exit")
    parser.add_argument("--max-series", type=int, default=10)
    parser.add_argument("--allow-empty", action="store_true")
    return parser.parse_args(argv)


def choose(args, boards):
    global_vars = dict(v.split("=", 1) for v in args.var)
    chosen = []
    if args.all:
        for uid, board in boards.items():
            for panel in panels(board):
                if panel.get("type") in RENDERABLE:
                    chosen.append((uid, panel["title"], dict(global_vars)))
    elif args.panel:
        for item in args.panel:
            uid, _, key = item.partition("/")
            chosen.append((uid, key, dict(global_vars)))
    else:
        chosen = [(uid, title, {**variables, **global_vars}) for uid, title, variables in DEFAULT_SET]
    return chosen


def main(argv):
    args = parse_args(argv)
    boards = load_dashboards()
    if args.list:
        for uid, board in boards.items():
            for panel in panels(board):
                if panel.get("type") in RENDERABLE:
                    print(f"{uid}/{slug(panel['title'])}\t{panel['type']}\t{panel['title']}")
        return 0

    end = args.end or dt.datetime.now(dt.timezone.utc).timestamp()
    end -= end % args.step
    window = int(args.minutes * 60)
    start = end - window
    failures = 0
    written = []
    for uid, key, overrides in choose(args, boards):
        board = boards.get(uid)
        panel = find_panel(board, key) if board else None
        if panel is None:
            print(f"render_panels: no panel {uid}/{key}", file=sys.stderr)
            failures += 1
            continue
        if panel.get("type") not in RENDERABLE:
            print(f"render_panels: {uid}/{key}: a {panel.get('type')} panel is not rendered",
                  file=sys.stderr)
            failures += 1
            continue
        values = variable_values(board, overrides, window, args.step, args.rate_interval)
        try:
            series = collect(panel, values, args.prometheus, start, end, args.step)
        except (RuntimeError, urllib.error.URLError, OSError) as err:
            print(f"render_panels: {uid}/{key}: {err}", file=sys.stderr)
            failures += 1
            continue
        points = sum(1 for _, pts, _ in series for _, v in pts if not math.isnan(v))
        path = os.path.join(args.out, uid, slug(panel["title"]) + ".png")
        if points == 0:
            print(f"render_panels: {uid}/{slug(panel['title'])}: no data, not written",
                  file=sys.stderr)
            if not args.allow_empty:
                failures += 1
            continue
        shown = {k: v for k, v in overrides.items() if k in values}
        note = ", ".join(f"{k} = {v}" for k, v in shown.items())
        render(panel, board, series, path, start, end, args.max_series, note)
        written.append(path)
        print(f"{os.path.relpath(path, ROOT)}: {len(series)} series, {points} points")
    size = sum(os.path.getsize(p) for p in written)
    print(f"render_panels: {len(written)} written ({size / 1024:.0f} KiB), {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
