"""A run's steps, built from its plan in runbook order, each with the compensation that undoes it.

preflight (checks, and manual gates opened by `golive approve RUN`) -> migrate -> smoke -> for each stage:
[gate], shift, hold (ONE RunProbes: the stage's checks and the guard probe on one clock) -> final validation
(one RunProbes) -> lock-in (PromoteTraffic). Pure: the saga (saga.py) decides what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from golive.shared.commands import (
    ApplyMigrations,
    PromoteTraffic,
    RevertMigrations,
    RollbackTraffic,
    RunProbe,
    RunProbes,
    ShiftTraffic,
    SplitTraffic,
    TakeTrafficTarget,
)
from golive.shared.envelope import Message
from golive.shared.events import Phase, StepRef
from golive.shared.judge import number
from golive.shared.plan import Plan
from golive.shared.plan.canary import Analysis
from golive.shared.plan.checks import Check, Gate, LoadSpec, Thresholds, hold_load
from golive.shared.step_ref import StepKind, preflight_gate_name


@dataclass(frozen=True)
class Step:
    """One step of a run: what it is (phase, kind, stage, probe), the command that does it (None: a gate) and the
    compensation that undoes it. ``name`` is its identity in command ids and compensations, never read for its
    parts: events carry ``ref``."""

    name: str
    phase: Phase
    kind: StepKind
    command: Message | None  # None: a gate, which waits for an approval instead of a service
    undo: Message | None = None
    # seconds of work the command itself asks for (a probe's duration); the plan's step timeout comes on top
    work_s: float = 0.0
    prompt: str = ""  # a preflight gate: what the operator confirms by approving
    stage: int | None = None  # the canary stage (1-based) the step belongs to
    probe: str | None = None  # the probe a preflight or smoke check runs

    @property
    def ref(self) -> StepRef:
        """The step as the fields events carry."""
        return StepRef(phase=self.phase, kind=self.kind, stage=self.stage, probe=self.probe)



def build_steps(plan: Plan, deploy_id: str, previous: str | None) -> list[Step]:
    """The run's steps in runbook order, each with the compensation that undoes it."""
    steps: list[Step] = []
    db_env = plan.database.url_env
    for item in plan.preflight:
        if isinstance(item, Gate):
            # a gate's deadline (work + step timeout) is the plan's approval timeout
            steps.append(Step(preflight_gate_name(item.gate, {s.name for s in steps}), "preflight", "gate", None,
                              work_s=plan.timeouts.approval - plan.timeouts.step, prompt=item.gate))
        else:
            probe = probe_command(plan, item, item.duration or 0.0, "preflight", deploy_id)
            steps.append(Step(f"preflight:check:{item.probe}", "preflight", "check", probe, work_s=_work_s(probe),
                              probe=item.probe))
    if plan.migrations.statements:
        migrations = plan.migrations
        statements = migrations.statements  # the plan's statements are what the migrator takes
        undo: Message | None = (
            RevertMigrations(database_url_env=db_env, statements=statements, session=migrations.session,
                             retry=migrations.retry)
            if plan.rollback.drop_indexes
            else None
        )
        steps.append(Step(
            "migrate", "migrate", "migrate",
            ApplyMigrations(database_url_env=db_env, statements=statements, session=migrations.session,
                            preflight=migrations.preflight, retry=migrations.retry),
            undo,
        ))
    for check in plan.smoke:
        probe = probe_command(plan, check, check.duration or 0.0, "smoke", deploy_id)
        steps.append(Step(f"smoke:{check.probe}", "smoke", "smoke", probe, work_s=_work_s(probe), probe=check.probe))
    provider = plan.traffic.provider
    # the first stage expects what the provider read back when the run took its target (the saga fills it in from
    # traffic_target_taken): never a constant, or a go-live after a promote would call its own target drift
    previous_weight: int | None = None
    for n, stage in enumerate(plan.canary.stages, start=1):
        if stage.approval:
            steps.append(Step(f"stage{n}:gate", "canary", "gate", None,
                              work_s=plan.timeouts.approval - plan.timeouts.step, stage=n))
        undo = RollbackTraffic(provider=provider, canary=deploy_id, to=previous) if n == 1 else None
        steps.append(Step(
            f"stage{n}:shift:{stage.weight}", "canary", "shift",
            # expected_previous_weight: the traffic service refuses (traffic_drift) if a human changed it since
            # golive set it or read it back
            ShiftTraffic(provider=provider, canary=deploy_id, stable=previous, weight=stage.weight,
                         expected_previous_weight=previous_weight),
            undo, stage=n,
        ))
        previous_weight = stage.weight
        label = f"stage {n} ({stage.weight}%)"
        interval = plan.analysis.interval if plan.analysis else None
        probes = [
            probe_command(plan, check, check.duration if check.duration is not None else stage.hold, label, deploy_id,
                       previous, window_s=check.window or interval, weight=stage.weight, hold=True)
            for check in stage.checks
        ]
        if plan.guards is not None:
            probes.append(_guard_probe(plan, stage.hold, label))
        if probes:
            hold = RunProbes(probes=probes, duration_s=max(p.duration_s for p in probes), label=label)
            steps.append(Step(f"stage{n}:hold", "canary", "hold", hold, work_s=_work_s(hold), stage=n))
    if plan.final_validation:
        label = "final validation"
        probes = [probe_command(plan, check, check.duration or 0.0, label, deploy_id, previous)
                  for check in plan.final_validation]
        validation = RunProbes(probes=probes, duration_s=max(p.duration_s for p in probes), label=label)
        steps.append(Step("final_validation", "final_validation", "validate", validation, work_s=_work_s(validation)))
    if plan.lock_in.promote:
        steps.append(Step("lock_in:promote", "lock_in", "promote",
                          PromoteTraffic(provider=provider, canary=deploy_id, stable=previous)))
    return steps


def take_command(plan: Plan, deploy_id: str, previous: str | None) -> TakeTrafficTarget | None:
    """The run's first traffic step, before anything else runs: hold the provider's target for this run and read
    its weights back. None: the run moves no traffic."""
    if not plan.canary.stages and not plan.lock_in.promote:
        return None
    return TakeTrafficTarget(provider=plan.traffic.provider, canary=deploy_id, stable=previous)


def probe_command(plan: Plan, check: Check, duration: float, label: str, deploy_id: str, previous: str | None = None,
               window_s: float | None = None, weight: int | None = None, hold: bool = False) -> RunProbe:
    """The RunProbe of one check. An http probe aimed at a deployment probes ``deploy_id``; with the plan's
    ``baseline`` and a previous deployment, that one is probed the same way and the check compares them. An http
    check on the production alias in a stage that splits traffic (``weight`` below 100) compares them too, within
    its one stream: by the deployment each answer names. A stage ``hold``'s check is open loop unless it names its
    mode (shared/plan/checks.py hold_load)."""
    alpha = plan.analysis.alpha if plan.analysis else Analysis().alpha
    load, concurrency = hold_load(check, window_s or duration, alpha) if hold else (check.load, check.concurrency or 1)
    thresholds = check.thresholds
    baseline = split = None
    if plan.baseline is not None and previous is not None:
        if plan.names_deployment(check.probe):
            baseline = plan.probe_spec(check.probe, previous)
        elif plan.probes[check.probe].kind == "http" and weight is not None and 0 < weight < 100:
            split = SplitTraffic(canary=deploy_id, stable=previous)
        if baseline is not None or split is not None:
            thresholds = thresholds.model_copy(update={"p95_increase_ms": plan.baseline.p95_increase_ms})
    return RunProbe(probe=plan.probe_spec(check.probe, deploy_id), duration_s=max(duration, 0.001),
                    concurrency=concurrency, load=load, window_s=window_s or check.window,
                    baseline=baseline, split=split, thresholds=thresholds, label=label, alpha=alpha)


def _guard_probe(plan: Plan, hold: float, label: str) -> RunProbe:
    """The guard's pg_health probe for one stage's hold, sampled every guards.sample_every, its windows
    the analysis interval, judged on the guard limits."""
    guards = plan.guards
    assert guards is not None  # a guard probe is built only for a plan with guards
    interval = (plan.analysis or Analysis()).interval
    return RunProbe(probe=plan.probe_spec(guards.probe, ""), duration_s=max(hold, 0.001),
                    load=LoadSpec(mode="open", rate=1.0 / guards.sample_every), window_s=interval,
                    thresholds=Thresholds.model_validate(guards.limits()), label=label)


def _work_s(command: RunProbe | RunProbes) -> float:
    """Seconds of work a probe command asks for: its duration and warm-up (the step timeout comes on top)."""
    probes = command.probes if isinstance(command, RunProbes) else [command]
    return max(p.duration_s + p.load.warmup_s for p in probes)


def describe_step(step: Step) -> str:
    """One line on what a step's command asks for (PhaseStarted.detail)."""
    command = step.command
    if isinstance(command, ApplyMigrations):
        return f"{len(command.statements)} statement(s)"
    if isinstance(command, RunProbe):
        return _describe_probe(command)
    if isinstance(command, RunProbes):
        return f"{command.duration_s:g}s: " + "; ".join(_describe_probe(p, with_duration=False) for p in command.probes)
    if isinstance(command, ShiftTraffic):
        return f"{command.weight}% to {command.canary}"
    if isinstance(command, PromoteTraffic):
        return f"promote {command.canary} to production"
    if isinstance(command, TakeTrafficTarget):
        return f"hold the traffic target of {command.canary} for this run"
    return ""


def _describe_probe(command: RunProbe, with_duration: bool = True) -> str:
    # large limits as people read them (104,857,600 bytes, not 1.04858e+08); small ones exactly as the plan says
    limits = ", ".join(f"{k} {number(v) if abs(v) >= 100 else f'{v:g}'}"
                       for k, v in command.thresholds.model_dump(exclude_none=True).items() if k != "min_samples")
    windows = f", windows of {command.window_s:g}s" if command.window_s and not with_duration else ""
    duration = f" for {command.duration_s:g}s" if with_duration else ""
    return f"{command.probe.name}{duration} ({limits or 'no thresholds'}{windows})"
