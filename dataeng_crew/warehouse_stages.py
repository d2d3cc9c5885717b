"""The stages a PostgreSQL or Spark warehouse adds to a proposal: extract it into DuckDB, keep grants to roles the
target has, and (``--validate-on-target``) build the committed SQL in a scratch schema of the real warehouse.

They run over the flow's :class:`~dataeng_crew.flow.ProposalRun` (passed in; this module never imports the flow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataeng_crew.contracts import ModelSpec, TargetValidation, WarehouseTarget
from dataeng_crew.errors import BuildError, ConfigError, WarehouseError
from dataeng_crew.recorder import StageIO
from dataeng_crew.tools import target_build
from dataeng_crew.tools.dbt_profile import read_target
from dataeng_crew.tools.dbt_runner import run_dbt
from dataeng_crew.tools.extract import DEFAULT_MAX_ROWS, DEFAULT_WINDOW_DAYS, ENGINE_NAMES, extract_target, scrub


@dataclass
class TargetOptions:
    """The project's own warehouse and what to do with it (``propose`` options)."""

    target: WarehouseTarget | None = None
    extract_rows: int = DEFAULT_MAX_ROWS
    extract_window_days: int | None = DEFAULT_WINDOW_DAYS
    validate_on_target: bool = False


def project_target(project: Path, profiles_dir: Path | None, warehouse: Path | None) -> WarehouseTarget | None:
    """The project's dbt target as dbt would find it; None when there is none, or when ``--warehouse`` is given
    and the profile cannot be rendered (the DuckDB path never needs it)."""
    try:
        return read_target(project, profiles_dir)
    except ConfigError:
        if warehouse is not None:
            return None
        raise


def target_dialect(target: WarehouseTarget | None) -> str | None:
    """The committed SQL's default dialect for a warehouse the extract reads (postgres, spark), else None."""
    return target.type if target is not None and target.type in ENGINE_NAMES else None


def reads_target(run: Any) -> bool:
    """The warehouse is the profile's PostgreSQL or Spark target (no ``--warehouse`` given)."""
    return run.warehouse_arg is None and target_dialect(run.target) is not None


def extract_warehouse(run: Any, io: StageIO) -> None:
    """A bounded DuckDB extract of the PostgreSQL or Spark warehouse, foreign keys closed: every later check runs
    on it."""
    opts = run.options.warehouse
    summary = extract_target(run.target, run.folder / "extract", opts.extract_rows, opts.extract_window_days)
    run.proposal.extract = summary
    run.warehouse_arg = Path(summary.db_file)
    sampled = [r.relation for r in summary.relations if r.sampled]
    io.observation = (f"{len(summary.relations)} relations, {sum(r.rows for r in summary.relations):,} rows "
                      f"({', '.join(sampled) + ' sampled' if sampled else 'every table whole'}), "
                      f"{len(summary.foreign_keys)} foreign keys closed, {summary.seconds:.1f} s")


def _granted(models: list[ModelSpec]) -> list[str]:
    return sorted({r for m in models for r in (m.grants or {}).get("select", [])})


def check_grants(run: Any, io: StageIO) -> None:
    """Grants name only roles the target has: others are left out and listed for the PR (roles to create).

    Checked on the server when the profile's PostgreSQL target can be reached; when it cannot, or the target is
    Spark (no roles to check), or the committed SQL is for another engine than the profile's, no role is assumed to
    exist: a default policy never breaks the build.
    """
    roles = _granted(run.models)
    if not roles:
        return
    have: set[str] = set()
    if run.target is not None and run.target.type == "postgres":
        try:
            have = target_build.existing_roles(run.target, roles)
        except WarehouseError as exc:
            io.observation = f"roles not checked ({exc}); "
    missing = [r for r in roles if r not in have]
    if missing:
        run.models = run.proposal.models = [_without_roles(m, set(missing)) for m in run.models]
        run.proposal.roles_to_create = missing
    io.observation = (io.observation or "") + (f"grants kept for {', '.join(sorted(have))}; " if have else "") + (
        f"left out for roles the target lacks: {', '.join(missing)}" if missing else "every granted role exists")


def _without_roles(model: ModelSpec, missing: set[str]) -> ModelSpec:
    if not model.grants:
        return model
    grants = {k: [r for r in v if r not in missing] for k, v in model.grants.items()}
    return model.model_copy(update={"grants": {k: v for k, v in grants.items() if v}})


def validate_on_target(run: Any, io: StageIO, selector: list[str]) -> None:
    """The committed SQL built and tested in ``dataeng_crew_<proposal id>`` on the real warehouse, its marts
    compared with the DuckDB build; the scratch schema is dropped afterwards, whatever happens (a failed build,
    Ctrl-C).

    Args:
        run: The proposal run (its committed files, sandbox and target).
        io: The stage's record.
        selector: dbt ``--select`` arguments of the proposal's models.
    """
    target, proposal = run.target, run.proposal
    if target_dialect(target) is None:
        raise ConfigError("--validate-on-target needs the project's dbt profile to name a PostgreSQL or Spark target")
    schema = target_build.scratch_schema(proposal.proposal_id)
    proposal.target_validation = result = TargetValidation(schema=schema, success=False)
    try:
        _build_on_target(run, schema, selector, result)
    finally:
        result.dropped = target_build.drop_scratch_schema(target, schema)
    io.observation = (f"{schema}: {result.tests_passed} tests passed, {result.tests_failed} failed; "
                      + ", ".join(f"{m}: {n} rows on the target, {result.extract_rows.get(m)} in DuckDB, "
                                  f"{result.rows_differing.get(m, 0)} differing" for m, n in result.mart_rows.items())
                      + f"; scratch schema dropped: {result.dropped}")
    if not result.success:
        raise BuildError(f"--validate-on-target ({target.label}, schema {schema}): {result.error}")


def _build_on_target(run: Any, schema: str, selector: list[str], result: TargetValidation) -> None:
    if scratch_build(run.target, run.box.project, run.files, schema, selector, run.folder / "on-target", result):
        _compare_marts(run, schema, result)


def scratch_build(target: WarehouseTarget, source: Path, files: dict[str, str], schema: str, selector: list[str],
                  folder: Path, result: TargetValidation) -> bool:
    """``dbt build`` of ``source`` (``files`` written over a copy of it) in ``schema`` of ``target`` only; the
    tests' outcome and any error go to ``result``. True when the build passed. The caller drops the schema."""
    project = target_build.prepare_scratch_project(source, folder / "project", files, schema)
    profiles = target_build.write_target_profile(folder / "profiles", _profile_name(source), target, schema)
    with target_build.password_in_env(target):
        build = run_dbt(["build", *selector], project, profiles, target_path=folder / "target",
                        log_path=folder / "logs", write_json=False,  # a local Spark session is this process's:
                        in_process=target.method == "session")  # dbt-spark must see its catalog
    tests = [n for n in build.nodes if n.resource_type == "test"]
    result.tests_passed = sum(n.status == "pass" for n in tests)
    result.tests_failed = len(tests) - result.tests_passed
    if not build.success:
        bad = [f"{n.unique_id}: {n.status} {(n.message or '')[:200]}" for n in build.nodes
               if n.status not in ("success", "pass")]
        result.error = scrub(build.error or "; ".join(bad[:5]) or "dbt build failed", target)
        return False
    return True


def validate_project_on_target(project: Path, target: WarehouseTarget | None, folder: Path, run_id: str,
                               selector: list[str] | None = None) -> TargetValidation:
    """``validate --on-target``: the project as it is (a pull request's checkout) built and tested in
    ``dataeng_crew_<run id>`` of the warehouse its dbt profile names; the schema is dropped afterwards, whatever
    happens (a failed build, Ctrl-C).

    Args:
        project: The dbt project (read, never written: a copy is built).
        target: The project's dbt target (:func:`~dataeng_crew.tools.dbt_profile.read_target`).
        folder: Scratch folder for the copy, its profile, target and logs.
        run_id: Names the scratch schema (in CI: the pull request's number and the run's attempt).
        selector: dbt ``--select`` arguments (default: every node).

    Raises:
        ConfigError: When the profile's target is not a PostgreSQL or Spark warehouse.
    """
    if target_dialect(target) is None:
        raise ConfigError(f"validate --on-target needs the dbt profile of {project} to name a PostgreSQL or Spark "
                          f"target{'' if target is None else f'; {target.label} is {target.type!r}'}")
    assert target is not None
    schema = target_build.scratch_schema(run_id)
    result = TargetValidation(schema=schema, success=False)
    try:
        result.success = scratch_build(target, project, {}, schema, selector or [], folder, result)
    finally:
        result.dropped = target_build.drop_scratch_schema(target, schema)
    return result


def _profile_name(project: Path) -> str:
    import yaml

    return str((yaml.safe_load((project / "dbt_project.yml").read_text()) or {}).get("profile"))


def _compare_marts(run: Any, schema: str, result: TargetValidation) -> None:
    """Row counts and a row-by-row diff of each mart, target vs the DuckDB sandbox; a difference fails only when
    the extract held every table whole (a sample is expected to differ from the whole warehouse)."""
    from dataeng_crew.tools.warehouse import connect, quote_ident

    whole = run.proposal.extract is None or not any(r.sampled for r in run.proposal.extract.relations)
    con = connect(run.box.db_file)
    try:
        for mart in (m for m in run.models if m.layer == "marts"):
            cols = [c.name for c in mart.columns]
            found = con.execute("select table_schema from information_schema.tables where table_name = ? "
                                "and table_catalog = current_database()", [mart.name]).fetchone()
            duck = con.execute(f"select {', '.join(quote_ident(c) for c in cols)} from "
                               f"{quote_ident(found[0])}.{quote_ident(mart.name)}").fetchall() if found else []
            on_target = target_build.target_rows(run.target, schema, mart.name, cols)
            result.mart_rows[mart.name], result.extract_rows[mart.name] = len(on_target), len(duck)
            result.rows_differing[mart.name] = target_build.rows_differing(duck, on_target)
    finally:
        con.close()
    differing = {m: n for m, n in result.rows_differing.items() if n}
    if differing and whole:
        result.error = ("the marts built on the target differ from the DuckDB build: "
                        + ", ".join(f"{m}: {n} rows" for m, n in differing.items()))
        return
    result.success = True
