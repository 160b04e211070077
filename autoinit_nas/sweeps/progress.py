"""Progress of a running sweep: the context engines report to, and one line per finished trial."""

import dataclasses
import math

from autoinit_nas.engines.errors import SweepError
from autoinit_nas.trials.arms import ARMS
from autoinit_nas.trials.records import is_bookkeeping

# Stop a sweep after this many trials in a row raised an error (divergence does not count).
MAX_CONSECUTIVE_ERRORS = 3


@dataclasses.dataclass
class SweepContext:
    """What an engine gets: the spec, the data, the space, its store folder, its options, and the progress hook."""

    spec: object
    dataset: object
    build: object
    store: str
    progress: object
    done_before: int = 0
    total: int = None  # progress denominator (default: spec.trials)
    finished: int = 0
    consecutive_errors: int = 0
    ran: list = dataclasses.field(default_factory=list)
    autoinit: object = None  # the AutoInit every trial copies (None: AutoInit())
    options: dict = dataclasses.field(default_factory=dict)  # the engine's options (``SweepSpec.options()``)

    def trial_finished(self, record, trial_id=None, seconds=None, error=None, twins=None):
        """Report one finished trial (its record, or its id and error when it has none).

        ``twins``: {arm: objective value} of the other arm(s) of the same
        candidate that ran as separate trials (Ray), shown for the pair.
        """
        self.finished += 1
        report = TrialReport.from_record(record, self.spec, trial_id=trial_id, seconds=seconds, error=error)
        for arm, value in (twins or {}).items():
            report.twins[arm] = value
        self.ran.append(report.trial_id)
        total = self.total or self.spec.trials
        position = min(self.done_before + self.finished, total)
        self.progress(format_report(report, position, total, self.spec))
        self.consecutive_errors = self.consecutive_errors + 1 if report.status == "error" else 0
        if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
            raise SweepError(
                f"{self.consecutive_errors} trials in a row failed with an error; the last: {report.error}. "
                f"Fix the cause and rerun the same command to resume (records are in {self.store})."
            )


@dataclasses.dataclass
class TrialReport:
    """What a progress line shows about one finished trial."""

    trial_id: str
    status: str
    seconds: float
    values: dict  # arm -> objective value (None when missing)
    diverged: dict  # arm -> bool
    hyperparameters: dict
    error: str = None
    twins: dict = dataclasses.field(default_factory=dict)  # other arms' values, from separate trials
    continues: str = None  # the trial whose checkpoint this one trained on from (Hyperband's reloaded_from)
    stopped_at: int = None  # epochs trained when Tune's scheduler ended the trial (record's stopped_by_tune)

    @classmethod
    def from_record(cls, record, spec, trial_id=None, seconds=None, error=None):
        if record is None:
            return cls(str(trial_id), "error", seconds or 0.0, {}, {}, {}, error or "no record written")
        values, diverged = {}, {}
        executions = record.get("executions") or []
        arms = executions[-1].get("arms", {}) if executions else {}
        for arm in sorted(arms, key=lambda name: ARMS.index(name) if name in ARMS else len(ARMS)):
            if arm in arms:
                values[arm] = (arms[arm].get("metrics") or {}).get(spec.objective)
                diverged[arm] = bool(arms[arm].get("diverged"))
        status = record.get("status") or "running"
        if error and status == "running":
            status = "error"
        if seconds is None:
            seconds = sum((arms[arm].get("train_seconds") or 0.0) + (arms[arm].get("init_seconds") or 0.0)
                          for arm in arms)
        return cls(
            trial_id=str(record.get("trial_id") if record.get("trial_id") is not None else trial_id),
            status=status,
            seconds=float(seconds),
            values=values,
            diverged=diverged,
            hyperparameters={k: v for k, v in (record.get("hyperparameters") or {}).items()
                             if not is_bookkeeping(k) and k != "init"},
            error=error or (record.get("reason") if status == "error" else None),
            continues=None if record.get("reloaded_from") is None else str(record["reloaded_from"]),
            stopped_at=max((arms[arm].get("epochs") or 0 for arm in arms), default=0)
            if record.get("stopped_by_tune") else None,
        )


def format_report(report, position, total, spec):
    """One progress line: ``[ 3/30] trial 02  completed  autoinit 0.917  default 0.819  +0.098  6.9 s  depth=14 ...``.

    The signed difference is each arm against the baseline arm (``default`` when trained, else the first).
    """
    width = len(str(total))
    parts = [f"[{position:>{width}}/{total}] trial {report.trial_id}", f"{report.status:<9}"]
    if report.status == "error" and not report.values:
        parts.append(f"error: {report.error}")
    for arm in report.values:
        if arm in report.values:
            parts.append(f"{arm} {_number(report.values[arm])}" + (" (diverged)" if report.diverged.get(arm) else ""))
    for arm, value in report.twins.items():
        if arm not in report.values:
            parts.append(f"({arm} {_number(value)})")
    from autoinit_nas.comparisons import default_baseline

    both = {**report.twins, **report.values}
    arms = sorted(both, key=lambda name: ARMS.index(name) if name in ARMS else len(ARMS))
    baseline = default_baseline(arms)  # "default" when trained, else the first arm: as the report pairs them
    for arm in (name for name in arms if name != baseline):
        if both[arm] is not None and both[baseline] is not None:
            difference = (both[arm] - both[baseline]) if spec.direction == "max" else (both[baseline] - both[arm])
            parts.append(f"{difference:+.3f}" if len(arms) == 2 else f"{arm}-{baseline} {difference:+.3f}")
    parts.append(f"{report.seconds:5.1f} s")
    if report.continues is not None:
        parts.append(f"continues trial {report.continues}")
    if report.stopped_at is not None and report.stopped_at < spec.epochs:
        parts.append(f"stopped early at epoch {report.stopped_at}/{spec.epochs}")
    fixed = {name for name, value in spec.hyperparameters.items() if not isinstance(value, (list, dict))}
    shown = " ".join(f"{name}={_short(value)}" for name, value in report.hyperparameters.items() if name not in fixed)
    if shown:
        parts.append(shown)
    return "  ".join(parts)


def _number(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "  nan"
    return f"{value:.3f}"


def _short(value):
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def duration(seconds):
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"
