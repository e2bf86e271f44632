"""The deployment report as one self-contained HTML page a lead reads in one screen: the status pill and the reason
with its numbers at the top, the stage strip (10% ✓ → 50% ✗), the badges, the chart, the checks with the failing ones
first, who did what, then the timeline. The chart and badges are embedded (base64), so the file stands alone.

Everything is escaped (Jinja2 autoescape); the values come from report.json (run_report.py, from the run's story); the
page is redacted (golive.shared.secrets) all the same.
"""

from __future__ import annotations

import base64

from jinja2 import Environment

from golive.shared.judge import number
from golive.shared.secrets import redact

PASSING_SHOWN = 12  # passing checks shown before "N more passed" (the failing ones are always shown)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.outcome_words | upper }}: {{ r.plan }} ({{ r.run_id }})</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; margin: 1.2em auto; max-width: 1100px;
        color: #212529; padding: 0 1em; }
 h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
 .status { display: flex; align-items: baseline; gap: .8em; flex-wrap: wrap; }
 .pill { display: inline-block; padding: .15em .8em; border-radius: 1em; color: #fff; font-weight: 700;
         font-size: 1.1em; letter-spacing: .02em; }
 .Healthy { background: #2b8a3e; } .RolledBack, .Degraded, .NeedsHuman { background: #c92a2a; }
 .Progressing, .Paused { background: #e67700; }
 .reason { font-size: 1.15em; font-weight: 600; }
 .facts { color: #495057; margin: .4em 0; } .facts span { margin-right: 1.2em; white-space: nowrap; }
 .strip { display: flex; gap: .4em; align-items: center; flex-wrap: wrap; margin: .6em 0; }
 .stage { padding: .15em .6em; border-radius: .3em; border: 1px solid #ced4da; font-weight: 600; }
 .stage.passed { background: #d3f9d8; border-color: #2b8a3e; } .stage.failed { background: #ffe3e3; border-color: #c92a2a; }
 .stage.pending { color: #868e96; } .arrow { color: #868e96; }
 .badges img { height: 20px; margin-right: .4em; vertical-align: middle; }
 table { border-collapse: collapse; width: 100%; font-size: 13px; }
 th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #dee2e6; vertical-align: top; }
 th { background: #f1f3f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .fail { color: #c92a2a; font-weight: 600; } .pass { color: #2b8a3e; } .inconclusive { color: #e67700; }
 img.chart { max-width: 100%; border: 1px solid #dee2e6; }
 code { background: #f1f3f5; padding: 0 .25em; border-radius: .2em; }
 ul.record { margin: .3em 0; padding-left: 1.2em; }
 details summary { cursor: pointer; color: #495057; }
</style></head>
<body>
<header>
<div class="status"><span class="pill {{ r.health }}" id="status">{{ r.outcome_words | upper }}</span>
 <span class="reason" id="reason">{{ r.reason or "running" }}</span></div>
<h1>Go-live of <code>{{ r.deployment_id }}</code> (previous <code>{{ r.previous_deployment_id }}</code>): {{ r.plan }}</h1>
<div class="facts">
 <span>run <code>{{ r.run_id }}</code></span><span>{{ r.health }}, {{ r.step_of }}</span>
 <span>started {{ r.started_at }}</span>
 <span>duration {{ r.duration_s if r.duration_s is not none else "-" }} s</span>
 {% if r.breach_to_rollback_s is not none %}<span id="breach">breach to rollback {{ "%.1f" % r.breach_to_rollback_s }} s</span>{% endif %}
 {% if r.rollback_s is not none and r.undone %}<span>rollback took {{ "%.1f" % r.rollback_s }} s</span>{% endif %}
</div>
{% if r.stages %}<div class="strip" id="stages">
{% for s in r.stages %}{% if not loop.first %}<span class="arrow">→</span>{% endif %}
<span class="stage {{ s.state if s.state in ('passed', 'failed') else 'pending' }}" title="{{ s.label }}: {{ s.state }}">
{{- s.weight }}% {{ marks.get(s.state, "·") }}</span>
{% endfor %}</div>{% endif %}
<div class="badges">{% for name, svg in badges %}<img alt="{{ name }}" src="data:image/svg+xml;base64,{{ svg }}">{% endfor %}</div>
{% if r.undone or r.kept or r.left_to_undo %}<ul class="record">
 {% for u in r.undone %}<li>undone: {{ u.what }}</li>{% endfor %}
 {% if r.kept %}<li>kept: {{ r.kept | join(", ") }} (rollback.drop_indexes is false)</li>{% endif %}
 {% if r.left_to_undo %}<li class="fail">left to undo by hand: {{ r.left_to_undo | join(", ") }}</li>{% endif %}
</ul>{% endif %}
</header>
{% if chart %}<img class="chart" alt="p95 and error rate over time per deployment, with stage boundaries, thresholds and the rollback"
     src="data:image/png;base64,{{ chart }}">{% endif %}
<h2>Checks, failing first</h2>
<table id="checks"><tr><th>check</th><th>value</th><th>threshold</th><th>verdict</th><th>samples</th></tr>
{% for c in shown %}<tr><td>{{ c.name }}</td><td class="num">{{ c.value | number }}</td>
<td class="num">{{ c.threshold | number }}</td>
<td class="{{ c.verdict }}">{{ 'FAIL' if c.verdict == 'fail' else c.verdict }}</td><td class="num">{{ "{:,}".format(c.samples) }}</td></tr>
{% else %}<tr><td colspan="5">no checks ran</td></tr>{% endfor %}</table>
{% if hidden %}<details><summary>{{ hidden | length }} more passed</summary><table>
{% for c in hidden %}<tr><td>{{ c.name }}</td><td class="num">{{ c.value | number }}</td>
<td class="num">{{ c.threshold | number }}</td><td class="{{ c.verdict }}">{{ c.verdict }}</td>
<td class="num">{{ "{:,}".format(c.samples) }}</td></tr>{% endfor %}</table></details>{% endif %}
{% if r.operator_actions %}<h2>Operator actions</h2>
<table id="actions"><tr><th>time</th><th>who</th><th>what</th><th>why / evidence</th></tr>
{% for a in r.operator_actions %}<tr><td title="{{ a.at }}">{{ a.at[11:19] }}</td><td>{{ a.by }}</td>
<td>{{ a.kind }}{% if a.gate %} "{{ a.gate }}"{% endif %}</td><td>{{ a.why }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Timeline</h2>
<details id="timeline"><summary>{{ r.timeline | length }} events</summary>
<table><tr><th>time</th><th>source</th><th>what</th></tr>
{% for t in r.timeline %}<tr><td>{{ t.time }}</td><td>{{ t.source }}</td><td{% if t.failed %} class="fail"{% endif %}>{{ t.what }}</td></tr>
{% endfor %}</table></details>
</body></html>
"""

_ENVIRONMENT = Environment(autoescape=True, trim_blocks=True)
# numbers as a person reads them: 104,857,600 and 43.33, never 104857600.0
_ENVIRONMENT.filters["number"] = lambda value: "-" if value is None else number(value)
_TEMPLATE = _ENVIRONMENT.from_string(_PAGE)
_MARKS = {"passed": "✓", "failed": "✗"}


def render_html(report: dict, badges: dict[str, str], chart_png: bytes | None) -> str:
    """The report page from report.json's data; ``badges`` (file name -> SVG) and ``chart_png`` are embedded."""
    chart = base64.b64encode(chart_png).decode() if chart_png else None
    checks = report["checks"]
    failing = [c for c in checks if c["verdict"] != "pass"]
    passing = [c for c in checks if c["verdict"] == "pass"]
    shown, hidden = failing + passing[:PASSING_SHOWN], passing[PASSING_SHOWN:]
    embedded = [(name, base64.b64encode(svg.encode()).decode()) for name, svg in badges.items()]
    page = _TEMPLATE.render(r=report, badges=embedded, chart=chart, shown=shown,
                            hidden=hidden, marks=_MARKS)
    # services redact what they publish; this page may be mailed around, so it is scrubbed once more
    return redact(page)
