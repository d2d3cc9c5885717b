"""The repair loop: a model that sqlglot or ``dbt build`` refused goes back to the role that wrote it.

At most ``max_rounds`` rounds; every round is recorded on the proposal. A brain that cannot repair
(the deterministic one returns None) leaves no trace, so the deterministic path behaves as before.
Data-test failures are not repaired here: they go through triage.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from dataeng_crew.contracts import BuildResult, ModelSpec, Proposal, RepairRound
from dataeng_crew.errors import BuildError, SqlCheckError, UnsafeArtifactError

T = TypeVar("T")
ERROR_CHARS = 1500


def trim_error(text: str, limit: int = ERROR_CHARS) -> str:
    """The error as given back to a role: secrets redacted, capped."""
    from dataeng_crew.agents.llm import redact

    return redact(text, limit)


def author_role(model: ModelSpec) -> str:
    """The role that writes a model of this layer."""
    return "modeler" if model.layer == "staging" else "transformer"


def sql_errors(proposal: Proposal) -> dict[str, str]:
    """``model → error`` from the sqlglot issues on the proposal."""
    errors: dict[str, str] = {}
    for issue in proposal.checks.sql_issues:
        errors[issue.model] = (errors.get(issue.model, "") + f"[{issue.kind}] {issue.message}\n")
    return errors


def build_errors(build: BuildResult | None) -> dict[str, str]:
    """``model → dbt error`` for models that errored (not tests: failing tests go to triage)."""
    if build is None:
        return {}
    return {n.unique_id.split(".")[-1]: n.message or n.status for n in build.nodes
            if n.resource_type == "model" and n.status in {"error", "runtime error"}}


def errors_for(proposal: Proposal) -> Callable[[Exception], dict[str, str]]:
    """``errors_of`` for :func:`with_repairs`: sqlglot issues for a SqlCheckError, else model errors of the build."""
    def errors_of(exc: Exception) -> dict[str, str]:
        if isinstance(exc, (SqlCheckError, UnsafeArtifactError)):
            return sql_errors(proposal) or {}
        return build_errors(proposal.checks.build)
    return errors_of


def with_repairs(proposal: Proposal, brain: Any, models: list[ModelSpec], attempt: Callable[[list[ModelSpec]], T],
                 errors_of: Callable[[Exception], dict[str, str]], stage: str, max_rounds: int,
                 ok: Callable[[T], bool] = lambda _r: True) -> tuple[T, list[ModelSpec]]:
    """Run ``attempt(models)``; on a refusal ask the authoring role to repair each refused model, then retry.

    Args:
        proposal: Where the rounds are recorded (``proposal.repairs``) and the models kept.
        brain: The brain; ``brain.repair(model, error, models)`` returns a new ModelSpec or None.
        models: The models to check.
        attempt: The check; raises SqlCheckError/UnsafeArtifactError/BuildError or returns a result.
        errors_of: ``model → error text`` for the failure just seen.
        stage: ``sqlglot`` or ``dbt build``.
        max_rounds: Repair rounds at most (0 = no repair).
        ok: For checks that return a failed result instead of raising: whether the result passed.

    Returns:
        The passing result and the (possibly repaired) models.

    Raises:
        The last failure, after ``max_rounds`` rounds or when the brain cannot repair.
    """
    repair = getattr(brain, "repair", None)
    round_no = 0
    while True:
        failure: Exception | None = None
        try:
            result = attempt(models)
            if ok(result):
                return result, models
        except (SqlCheckError, UnsafeArtifactError, BuildError) as exc:
            failure = exc
        errors = errors_of(failure) if failure is not None else errors_of(BuildError("build failed"))
        if not errors or round_no >= max_rounds or repair is None:
            if failure is not None and round_no:
                raise type(failure)(f"{failure}\n(still failing after {round_no} repair round(s); every round is in "
                                    "report.json under repairs)") from failure
            if failure is not None:
                raise failure
            return result, models  # not a model error: the caller's own path (triage) takes it
        round_no += 1
        by_name = {m.name: m for m in models}
        changed = False
        for name, error in errors.items():
            model = by_name.get(name)
            if model is None:
                continue
            error = trim_error(f"{stage} refused {name}: {error}")
            fixed = repair(model, error, models)
            if fixed is None:
                if round_no > 1 or proposal.repairs:
                    proposal.repairs.append(RepairRound(round=round_no, model=name, role=author_role(model),
                                                        stage=stage, error=error, outcome="cannot_repair",
                                                        sql_before=model.sql))  # type: ignore[arg-type]
                continue
            fixed = fixed.model_copy(update={"name": model.name, "layer": model.layer, "folder": model.folder})
            proposal.repairs.append(RepairRound(round=round_no, model=name, role=author_role(model), stage=stage,
                                                error=error, outcome="rewritten", sql_before=model.sql,
                                                sql_after=fixed.sql))  # type: ignore[arg-type]
            by_name[name] = fixed
            changed = True
        if not changed:
            if failure is not None:
                raise failure
            return result, models
        models = [by_name[m.name] for m in models]
        proposal.models = models
