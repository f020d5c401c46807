"""Group scores and the summary score (Kayenta's weighted-sum scorer), and the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from genesis.gate.verdict import Classification, GroupScore, MetricResult


def _weights(groups: Sequence[str], explicit: Mapping[str, float]) -> dict[str, float]:
    """Named weights as given; groups without one share what is left of 100 equally."""
    named = {g: explicit[g] for g in groups if g in explicit}
    rest = [g for g in groups if g not in explicit]
    share = max(0.0, 100.0 - sum(named.values())) / len(rest) if rest else 0.0
    return {g: named.get(g, share) for g in groups}


def score_groups(
    results: Sequence[MetricResult], weights: Mapping[str, float]
) -> tuple[tuple[GroupScore, ...], float | None]:
    """Each group scores the share of its judged metrics that passed (0-100).

    The summary is the weighted mean over groups that could be judged, renormalised so a
    group with no data neither counts as passing nor drags the score down: missing data is
    reported as INCONCLUSIVE by the verdict rule instead. None when nothing could be judged.
    """
    names = list(dict.fromkeys(r.group for r in results))
    weight_of = _weights(names, weights)
    groups: list[GroupScore] = []
    for name in names:
        members = [r for r in results if r.group == name]
        passed = sum(r.classification is Classification.PASS for r in members)
        failed = sum(r.classification.is_failure for r in members)
        nodata = sum(not r.classification.is_scored for r in members)
        judged = passed + failed
        groups.append(
            GroupScore(
                name=name,
                score=100.0 * passed / judged if judged else None,
                weight=weight_of[name],
                passed=passed,
                failed=failed,
                nodata=nodata,
            )
        )
    scored = [g for g in groups if g.score is not None and g.weight > 0]
    total_weight = sum(g.weight for g in scored)
    if not scored or total_weight == 0:
        return tuple(groups), None
    summary = sum((g.score or 0.0) * g.weight for g in scored) / total_weight
    return tuple(groups), summary
