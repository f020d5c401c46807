"""The comparative judge: preprocess -> classify each metric -> score groups -> verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genesis.gate.classify import MetricData, classify
from genesis.gate.rules import JudgeConfig, MetricRule
from genesis.gate.scoring import score_groups
from genesis.gate.verdict import Classification, Judgment, MetricResult, Verdict


def judge(
    rules: Sequence[MetricRule],
    data: Mapping[str, MetricData],
    config: JudgeConfig | None = None,
) -> Judgment:
    """Judge the canary against the baseline; a metric without data is NODATA, not a pass."""
    config = config or JudgeConfig()
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
    results = tuple(
        classify(rule, data.get(rule.name, MetricData(name=rule.name)), config) for rule in rules
    )
    return decide(results, config)


def _listing(results: Sequence[MetricResult]) -> str:
    return "; ".join(f"{r.name}: {r.reason}" for r in results)


def decide(results: Sequence[MetricResult], config: JudgeConfig) -> Judgment:
    """Turn classified metrics into a verdict, with the sentence that explains it."""
    results = tuple(results)
    counted = [r for r in results if not r.dry_run]
    groups, score = score_groups(counted, config.group_weights)

    def judgment(verdict: Verdict, reason: str, value: float | None = score) -> Judgment:
        return Judgment(
            verdict=verdict,
            score=0.0 if value is None else round(value, 2),
            reason=reason,
            metrics=results,
            groups=groups,
            pass_threshold=config.pass_threshold,
            marginal_threshold=config.marginal_threshold,
        )

    if not counted:
        return judgment(Verdict.ERROR, "no metric to judge (none configured, or all dry-run)")
    critical = [r for r in counted if r.critical_failure]
    if critical:
        return judgment(Verdict.FAIL, "critical metric failed: " + _listing(critical), 0.0)
    failed = [r for r in counted if r.classification.is_failure]
    if score is not None and score < config.marginal_threshold:
        return judgment(
            Verdict.FAIL,
            f"score {score:.1f} is below the marginal threshold "
            f"{config.marginal_threshold:g}: " + _listing(failed),
        )
    errors = [r for r in counted if r.classification is Classification.ERROR]
    if errors:
        return judgment(Verdict.ERROR, "metrics could not be judged: " + _listing(errors))
    nodata = [r for r in counted if r.classification is Classification.NODATA]
    if nodata:
        return judgment(
            Verdict.INCONCLUSIVE,
            "too little data to pass: " + _listing(nodata),
        )
    assert score is not None  # every counted metric was judged, so the score exists
    if score < config.pass_threshold:
        return judgment(
            Verdict.INCONCLUSIVE,
            f"score {score:.1f} is marginal (pass at {config.pass_threshold:g}): "
            + _listing(failed),
        )
    if failed:
        return judgment(
            Verdict.PASS,
            f"score {score:.1f} reaches {config.pass_threshold:g} despite: " + _listing(failed),
        )
    return judgment(Verdict.PASS, f"score {score:.1f}: every metric passed")
