"""The gate's answer from both kinds of checks: threshold measurements and the comparison.

Pure. The comparative judge gives a Judgment and the threshold checks give a phase per metric;
the run's verdict is the most severe of them (FAIL > ERROR > INCONCLUSIVE > PASS), and the
reason names what decided it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from genesis.gate.measurement import MetricStatus, Phase
from genesis.gate.verdict import Judgment, Verdict, worst

NOTHING_TO_JUDGE = "no metric to judge (none configured, or all dry-run)"


def combine(judgment: Judgment | None, checks: Sequence[MetricStatus]) -> Judgment:
    """One Judgment for the whole run.

    `judgment` is the comparison's (None when the analysis compares nothing). A check still
    running counts for nothing: the runner stops early only on a failure, which decides anyway.
    The score is the comparison's, or, with threshold checks only, the share of counted checks
    that were successful.
    """
    counted = [c for c in checks if not c.dry_run]
    finished = [(c, v) for c in counted if (v := c.phase.verdict) is not None]
    verdicts = [v for _, v in finished]
    if judgment is None:
        if not counted:
            return Judgment(Verdict.ERROR, 0.0, NOTHING_TO_JUDGE, ())
        successful = sum(c.phase is Phase.SUCCESSFUL for c in counted)
        judgment = Judgment(
            Verdict.PASS,
            round(100.0 * successful / len(counted), 2),
            "every threshold check was successful",
            (),
        )
        compared = False
    else:
        verdicts.append(judgment.verdict)
        compared = True
    verdict = worst(verdicts) if verdicts else Verdict.ERROR
    deciding = [f"{c.name}: {c.phase.value}, {c.message}" for c, v in finished if v is verdict]
    parts = []
    if deciding and verdict is not Verdict.PASS:
        parts.append("threshold checks: " + "; ".join(deciding))
    if compared and (judgment.verdict is verdict or not parts):
        parts.append(f"comparison: {judgment.reason}")
    return replace(judgment, verdict=verdict, reason=" | ".join(parts) or judgment.reason)
