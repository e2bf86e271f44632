"""The deployment report as one self-contained HTML page: the chart embedded (base64 PNG), then the same
sections as report.md (summary, phases, checks, timeline). Everything is escaped (Jinja2 autoescape); the
values come from the report and checks that artifacts.py built from the run's events; the page is redacted
(shared.secrets) all the same.
"""

from __future__ import annotations

import base64

from jinja2 import Environment

from shared.secrets import redact

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Go-live report: {{ r.plan }} ({{ r.run_id }})</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto; max-width: 1100px;
        color: #212529; padding: 0 1em; }
 h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
 .outcome { display: inline-block; padding: .1em .6em; border-radius: .3em; color: #fff; font-weight: 600; }
 .succeeded { background: #2b8a3e; } .rolled_back { background: #e67700; } .needs_human, .running { background: #c92a2a; }
 table { border-collapse: collapse; width: 100%; font-size: 13px; }
 th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid #dee2e6; vertical-align: top; }
 th { background: #f1f3f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .fail { color: #c92a2a; font-weight: 600; } .pass { color: #2b8a3e; }
 img.chart { max-width: 100%; border: 1px solid #dee2e6; }
 code { background: #f1f3f5; padding: 0 .25em; border-radius: .2em; }
 dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; } dt { color: #495057; }
</style></head>
<body>
<h1>Go-live report: {{ r.plan }}</h1>
<p><span class="outcome {{ r.outcome }}">{{ r.outcome }}</span>{% if r.reason %} {{ r.reason }}{% endif %}</p>
<dl>
 <dt>run</dt><dd><code>{{ r.run_id }}</code></dd>
 <dt>deployment</dt><dd><code>{{ r.deployment_id }}</code> (previous <code>{{ r.previous_deployment_id }}</code>)</dd>
 <dt>started</dt><dd>{{ r.started_at }}</dd>
 <dt>duration</dt><dd>{{ r.duration_s if r.duration_s is not none else "-" }} s</dd>
 {% if r.final_traffic %}<dt>final traffic</dt><dd>{{ r.final_traffic.canary_weight }}% to
   <code>{{ r.final_traffic.canary }}</code> via {{ r.final_traffic.provider }}</dd>{% endif %}
 {% if r.left_to_undo %}<dt>left to undo by hand</dt><dd class="fail">{{ r.left_to_undo | join(", ") }}</dd>{% endif %}
</dl>
{% if chart %}<h2>p95 and error rate over time</h2>
<img class="chart" alt="p95 and error rate over time per deployment, with stage boundaries, thresholds and the rollback"
     src="data:image/png;base64,{{ chart }}">{% endif %}
<h2>Phases</h2>
<table><tr><th>phase</th><th>started</th><th>seconds</th></tr>
{% for p in r.phases %}<tr><td>{{ p.phase }}</td><td>{{ p.started_at }}</td><td class="num">{{ p.seconds }}</td></tr>
{% endfor %}</table>
<h2>Checks</h2>
<table><tr><th>check</th><th>value</th><th>threshold</th><th>verdict</th><th>samples</th></tr>
{% for c in checks %}<tr><td>{{ c.name }}</td><td class="num">{{ c.value }}</td><td class="num">{{ c.threshold }}</td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ 'pass' if c.passed else 'FAIL' }}</td><td class="num">{{ c.samples }}</td></tr>
{% else %}<tr><td colspan="5">no checks ran</td></tr>{% endfor %}</table>
<h2>Timeline</h2>
<table><tr><th>time</th><th>source</th><th>what</th></tr>
{% for t in r.timeline %}<tr><td>{{ t.time }}</td><td>{{ t.source }}</td>
<td{% if t.what.startswith('FAILED') %} class="fail"{% endif %}>{{ t.what }}</td></tr>
{% endfor %}</table>
</body></html>
"""

_TEMPLATE = Environment(autoescape=True, trim_blocks=True).from_string(_PAGE)


def render_html(report: dict, checks: list[dict], chart_png: bytes | None) -> str:
    """The report page; ``chart_png`` is embedded, so the file stands alone (mail it, attach it to a ticket)."""
    chart = base64.b64encode(chart_png).decode() if chart_png else None
    # services redact what they publish; this page may be mailed around, so it is scrubbed once more
    return redact(_TEMPLATE.render(r=report, checks=checks, chart=chart))
