"""CI for the user's repository: the pull-request workflow that `dataeng-crew init-ci` installs,
and the Markdown summary `validate --markdown` writes (to ``$GITHUB_STEP_SUMMARY`` in that workflow)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from dataeng_crew.errors import ConfigError

if TYPE_CHECKING:
    from dataeng_crew.checks import ValidationReport
    from dataeng_crew.contracts import TargetValidation

WORKFLOW_PATH = ".github/workflows/dataeng-crew-pr.yml"


def render_workflow(project_dir: str = ".", warehouse: str = "", setup: str = "", pip_spec: str = "dataeng-crew",
                    template: str = "dataeng-crew-pr.yml") -> str:
    """The workflow YAML for a dbt project at ``project_dir`` (relative to the repository root).

    Args:
        project_dir: The dbt project folder in the repository, posix.
        warehouse: DuckDB file or data folder in the repository (empty: the project's DuckDB profile).
        setup: Shell command that creates the warehouse in CI (empty: none).
        pip_spec: What ``pip install`` installs for dataeng-crew (a version, a git URL, a wheel).
        template: The template under ``templates/`` (the PR workflow, or the review loop's).
    """
    return _fill(template, {"DBT_PROJECT_DIR": project_dir, "WAREHOUSE": warehouse, "WAREHOUSE_SETUP": setup,
                            "PIP_SPEC": pip_spec})


def _fill(template: str, values: dict[str, str], verbatim: dict[str, str] | None = None) -> str:
    """The template under ``templates/`` with each ``__KEY__`` replaced: ``values`` as JSON strings (a valid YAML
    scalar), ``verbatim`` as they are (YAML lines, a quoted pip requirement)."""
    text = resources.files("dataeng_crew").joinpath(f"templates/{template}").read_text()
    for key, value in values.items():
        text = text.replace(f"__{key}__", json.dumps(value))
    for key, value in (verbatim or {}).items():
        text = text.replace(f"__{key}__", value)
    return text


def _write(path: Path, text: str, force: bool) -> Path:
    """Write a workflow file, refusing to overwrite a different one without ``force``.

    Raises:
        ConfigError: When the file exists and differs (without ``force``).
    """
    if path.exists() and path.read_text() != text and not force:
        raise ConfigError(f"{path} exists and differs; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


REVISE_WORKFLOW_PATH = ".github/workflows/dataeng-crew-revise.yml"


def render_revise_workflow(project_dir: str = ".", warehouse: str = "", setup: str = "",
                           pip_spec: str = "dataeng-crew") -> str:
    """The review-loop workflow (``init-ci --revise``): ``dataeng-crew revise --pr N`` on a "changes requested"
    review or a ``/dataeng-crew revise`` comment, for users with write access only (see the template's header)."""
    return render_workflow(project_dir, warehouse, setup, pip_spec, template="dataeng-crew-revise.yml")


def install_revise_workflow(repo_root: Path, project: Path, warehouse: str = "", setup: str = "",
                            pip_spec: str = "dataeng-crew", force: bool = False) -> Path:
    """Write the review-loop workflow to ``<repo_root>/.github/workflows/`` (see :func:`install_workflow`)."""
    return install_workflow(repo_root, project, warehouse, setup, pip_spec, force, revise=True)


def install_workflow(repo_root: Path, project: Path, warehouse: str = "", setup: str = "",
                     pip_spec: str = "dataeng-crew", force: bool = False, revise: bool = False) -> Path:
    """Write the workflow (``revise``: the review loop's) to ``<repo_root>/.github/workflows/``.

    Raises:
        ConfigError: When the project is outside the repository, or the file exists and differs (without ``force``).
    """
    try:
        rel = project.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{project} is not inside {repo_root}") from None
    path = repo_root / (REVISE_WORKFLOW_PATH if revise else WORKFLOW_PATH)
    text = (render_revise_workflow if revise else render_workflow)(rel or ".", warehouse, setup, pip_spec)
    return _write(path, text, force)


TARGET_WORKFLOW_PATH = ".github/workflows/dataeng-crew-target.yml"
TARGET_ADAPTERS = {"postgres": '"dbt-postgres>=1.9,<1.12"', "spark": '"dbt-spark[PyHive]>=1.9,<1.12"'}


def install_target_workflow(repo_root: Path, project: Path, profiles_dir: Path | None = None,
                            pip_spec: str = "dataeng-crew", force: bool = False) -> tuple[Path, list[str]]:
    """Write the on-target workflow (``init-ci --on-target``): every pull request built and tested in a scratch
    schema of the warehouse the project's dbt profile names, its ``env_var()``s read from secrets of the same names.

    Returns:
        The workflow file, and the secrets it reads.

    Raises:
        ConfigError: When the profile is not in the repository, its target is not PostgreSQL or Spark, or the file
            exists and differs (without ``force``).
    """
    from dataeng_crew.tools.dbt_profile import target_environment

    folder, kind, names = target_environment(project, profiles_dir)
    if kind not in TARGET_ADAPTERS:
        raise ConfigError(f"init-ci --on-target needs a PostgreSQL or Spark target in {folder}/profiles.yml, not "
                          f"{kind or 'none'!r}")
    try:
        rel_project = project.resolve().relative_to(repo_root.resolve()).as_posix() or "."
        rel_profiles = folder.resolve().relative_to(repo_root.resolve()).as_posix() or "."
    except ValueError:
        raise ConfigError(f"{folder}/profiles.yml and the project must be inside {repo_root}: CI reads the profile "
                          "from the repository (commit one whose credentials are env_var()s)") from None
    secrets = "\n".join(f"      {n}: ${{{{ secrets.{n} }}}}" for n in names) or "      # (the profile reads no env_var)"
    text = _fill("dataeng-crew-target.yml", {"DBT_PROJECT_DIR": rel_project, "PROFILES_DIR": rel_profiles,
                                             "PIP_SPEC": pip_spec},
                 {"SECRET_ENV": secrets, "ADAPTER": TARGET_ADAPTERS[kind]})
    return _write(repo_root / TARGET_WORKFLOW_PATH, text, force), names


def target_markdown(result: "TargetValidation", label: str) -> str:
    """A Markdown summary of ``validate --on-target``."""
    verdict = "✅ passed" if result.success else "❌ failed"
    lines = [f"## dataeng-crew validate on target: {verdict}", "",
             f"Built and tested in schema `{result.schema_}` of {label}: {result.tests_passed} tests passed, "
             f"{result.tests_failed} failed; scratch schema dropped: {'yes' if result.dropped else '**no**'}."]
    if result.error:
        lines += ["", f"dbt: `{result.error[:1000]}`"]
    return "\n".join(lines) + "\n"


def validation_markdown(report: "ValidationReport", state: Path | None = None, defer: bool = False) -> str:
    """A Markdown summary of `validate`: verdict, dbt nodes, GX suites."""
    build = report.build
    lines = [f"## dataeng-crew validate: {'✅ passed' if report.passed else '❌ failed'}", ""]
    if state is not None:
        graph = "state:modified+ --defer" if defer else "+state:modified+"
        lines += [f"Slim CI: `{graph}` against the base manifest ({len(build.nodes) if build else 0} nodes "
                  "selected).", ""]
    if build and build.error:
        lines += [f"dbt: `{build.error[:500]}`", ""]
    lines += ["| check | object | result | detail |", "|---|---|---|---|"]
    for node in (build.nodes if build else []):
        if node.resource_type in {"test", "model", "seed", "snapshot"}:
            ok = node.status in {"pass", "success"}
            detail = "" if ok else (node.message or "").replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| dbt {node.resource_type} | `{node.unique_id.split('.')[2]}` | "
                         f"{'pass' if ok else '**' + node.status + '**'} | {detail} |")
    for r in report.suite_results:
        ok = not r.failed and not r.error
        lines.append(f"| GX suite | `{r.suite}` | {'pass' if ok else '**fail**'} | {r.passed}/{r.evaluated} "
                     f"expectations on {r.rows_validated:,} rows{(' — ' + r.error) if r.error else ''} |")
    if report.diffs:
        from dataeng_crew.tools.data_diff import diff_markdown

        lines += ["", diff_markdown(report.diffs, "base branch")]
    return "\n".join(lines) + "\n"
