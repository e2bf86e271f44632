"""The Grafana dashboard of golive's metrics, generated as code (Grafana's foundation SDK) into
deploy/grafana/golive.json: `golive docs dashboard`. A test fails when the committed file differs, and another when
it queries a metric no service exports (tests/e2e/test_metric_series.py scrapes them).

Rows: the runs (outcomes, rollbacks, where each plan's run stands, traffic weights), the analysis (each check's
p95 and error rate, guard values, window and stage verdicts, breach to rollback), the bus (commands, events, dead
letters, FastStream's messages by subject pattern), the prober and the notifier. Every query aggregates over
bounded labels only (plan, stage, probe, gauge, service, role): the metrics carry no run id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DASHBOARD_FILE = Path("deploy") / "grafana" / "golive.json"
UID = "golive"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
PLAN = 'plan=~"$plan"'

# (title, unit, [(PromQL, legend)]) per panel, by row
Panel = tuple[str, str, list[tuple[str, str]]]
ROWS: list[tuple[str, list[Panel]]] = [
    ("Runs", [
        ("Runs ended by outcome", "short",
         [("sum by (outcome) (increase(golive_runs_total[$__range]))", "{{outcome}}")]),
        ("Rollbacks started by cause", "short",
         [("sum by (cause) (increase(golive_rollbacks_total[$__range]))", "{{cause}}")]),
        ("Step each plan's run is at", "short", [(f"golive_run_step{{{PLAN}}}", "{{plan}}")]),
        ("Canary weight asked for", "percent", [(f"golive_run_canary_weight{{{PLAN}}}", "{{plan}}")]),
        ("Traffic weight read back", "percent",
         [("golive_traffic_weight_percent", "{{provider}} {{role}}")]),
        ("Runs this coordinator drives", "short", [("golive_coordinator_runs_in_memory", "{{instance}}")]),
    ]),
    ("Analysis", [
        ("Check p95 (last judged window)", "ms",
         [(f"golive_check_p95_ms{{{PLAN}}}", "{{plan}} stage {{stage}} {{probe}}")]),
        ("Check error rate (last judged window)", "percent",
         [(f"golive_check_error_rate_percent{{{PLAN}}}", "{{plan}} stage {{stage}} {{probe}}")]),
        ("Guard values (last judged window)", "short",
         [(f"golive_guard_value{{{PLAN}}}", "{{plan}} stage {{stage}} {{gauge}}")]),
        ("Windows judged by verdict", "short",
         [(f"sum by (verdict) (increase(golive_windows_judged_total{{{PLAN}}}[$__rate_interval]))", "{{verdict}}")]),
        ("Stages by verdict", "short",
         [(f"sum by (stage, verdict) (increase(golive_stages_judged_total{{{PLAN}}}[$__range]))",
           "stage {{stage}} {{verdict}}")]),
        ("Breach to rollback", "s", [
            (f"histogram_quantile({q}, sum by (le) (rate(golive_breach_to_rollback_seconds_bucket[$__rate_interval])))",
             f"p{round(q * 100)}") for q in (0.5, 0.95)]),
    ]),
    ("Bus", [
        ("Commands by service and outcome", "ops",
         [("sum by (service, outcome) (rate(golive_commands_total[$__rate_interval]))", "{{service}} {{outcome}}")]),
        ("Command time p95", "s", [
            ("histogram_quantile(0.95, sum by (service, le) (rate(golive_command_seconds_bucket[$__rate_interval])))",
             "{{service}}")]),
        ("Events published", "ops",
         [("sum by (service) (rate(golive_events_published_total[$__rate_interval]))", "{{service}}")]),
        ("Dead letters", "short",
         [("sum by (service) (increase(golive_dead_letters_total[$__range]))", "{{service}}")]),
        ("Messages received by subject pattern", "ops",
         [("sum by (app_name, handler) (rate(faststream_received_messages_total[$__rate_interval]))",
           "{{app_name}} {{handler}}")]),
        ("Message handling p95", "s", [
            ("histogram_quantile(0.95, sum by (app_name, le) "
             "(rate(faststream_received_processed_messages_duration_seconds_bucket[$__rate_interval])))",
             "{{app_name}}")]),
    ]),
    ("Prober and notifier", [
        ("Probes and holds running", "short", [("golive_prober_holds_running", "{{instance}}")]),
        ("Connections held by probes", "short", [("golive_prober_connections_held", "{{instance}}")]),
        ("Probes refused (connection budget)", "short",
         [("sum(increase(golive_prober_refused_total[$__range]))", "refused")]),
        ("Notifications by sink and outcome", "short",
         [("sum by (sink, outcome) (increase(golive_notifier_deliveries_total[$__range]))", "{{sink}} {{outcome}}")]),
        ("Notifier ledger window p95", "s", [
            ("histogram_quantile(0.95, sum by (le) "
             "(rate(golive_notifier_ledger_window_seconds_bucket[$__rate_interval])))", "p95")]),
    ]),
]
# panels whose figure is a total over the time range: shown as a number, not a line
STATS = {"Runs ended by outcome", "Rollbacks started by cause", "Dead letters", "Probes refused (connection budget)"}


def build() -> Any:
    """The dashboard model (grafana_foundation_sdk.models.dashboard.Dashboard)."""
    dashboard = (
        DashboardBuilder("golive")
        .uid(UID)
        .tags(["golive", "generated"])
        .description("golive's runs, judged numbers and bus (generated by `golive docs dashboard`)")
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(QueryVariable("plan").label("Plan").datasource(DATASOURCE).multi(True).include_all(True)
                       .all_value(".*").query("label_values(golive_windows_judged_total, plan)"))
    )
    for title, panels in ROWS:
        dashboard = dashboard.with_row(Row(title))
        for name, unit, queries in panels:
            panel = (Stat() if name in STATS else Timeseries()).title(name).unit(unit).datasource(DATASOURCE)
            for ref, (expr, legend) in zip("ABCDEFGH", queries):
                panel = panel.with_target(Dataquery().expr(expr).legend_format(legend).ref_id(ref))
            dashboard = dashboard.with_panel(panel.height(8).span(8))
    return dashboard.build()


def render_dashboard() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build()) + "\n"


def write_dashboard(path: Path = DASHBOARD_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dashboard())
    return path


_METRIC = re.compile(r"\b((?:golive|faststream)_[a-zA-Z0-9_]+)")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def metrics_queried(document: str) -> set[str]:
    """The metric families the dashboard's queries read (a histogram's _bucket, _sum, _count: its family)."""
    names = set()
    for panel in json.loads(document)["panels"]:
        for target in panel.get("targets", []):
            for name in _METRIC.findall(target["expr"]):
                for suffix in _HISTOGRAM_SERIES:
                    name = name.removesuffix(suffix)
                names.add(name)
    return names
