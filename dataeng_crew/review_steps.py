"""The exact commands that review a published proposal on a fresh clone (the PR's first screen).

A fresh clone has no warehouse unless git tracks it, no installed packages and no loaded seeds: the steps say
how to get each, from what the project holds, so that copying them builds the branch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from dataeng_crew.settings import PII_KEY_ENV
from dataeng_crew.tools.project_inventory import has_seeds


def _tracked(repo: Path, path: Path) -> bool:
    """Whether git tracks ``path`` in ``repo``."""
    try:
        rel = path.resolve().relative_to(repo.resolve())
    except ValueError:
        return False
    done = subprocess.run(["git", "-C", str(repo), "ls-files", "--error-unmatch", "--", str(rel)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _is_sample(project: Path, repo: Path | None, prefix: str) -> bool:
    """Whether ``project`` is dataeng-crew's sample project: its committed README is the sample's (a clone gets
    the committed one, whatever the working tree holds)."""
    try:
        from dataeng_crew.tools.sample_data import sample_template  # numpy: only when asked

        template = (sample_template() / "README.md").read_text()
    except Exception:  # noqa: BLE001 - no template in this installation: not the sample
        return False
    if repo is None:
        return (project / "README.md").is_file() and (project / "README.md").read_text() == template
    done = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{prefix}README.md"], capture_output=True,
                          text=True, check=False)
    return done.returncode == 0 and done.stdout == template


SKIPPED_FOLDERS = {"target", "dbt_packages", "logs", ".dataeng-crew", ".git", ".venv"}


def _reads_pii_key(project: Path) -> bool:
    """Whether a model of the project (a masking mart merged earlier) reads the keyed-hash key: a bare
    ``dbt build`` of the branch then stops with "Env var required" until it is set."""
    for path in project.rglob("*.sql"):
        if SKIPPED_FOLDERS.isdisjoint(path.relative_to(project).parts) and PII_KEY_ENV in path.read_text(errors="ignore"):
            return True
    return False


def review_commands(project: Path, repo: Path | None, prefix: str, branch: str, warehouse: Path | None,
                    remote: bool, masked: bool = False) -> list[str]:
    """Shell lines that check out ``branch`` and build it from nothing but the clone.

    Args:
        project: The dbt project folder.
        repo: Its git repository (None: not in git).
        prefix: The project's folder inside the repository (``""`` or ``"dbt_project/"``).
        branch: The proposal's branch.
        warehouse: The DuckDB file the proposal was validated on (None: unknown).
        remote: Whether the branch is on GitHub (fetch it) or only local.
        masked: Whether a mart hashes personal data (its key comes from ``DATAENG_CREW_PII_KEY``); a model of the
            project that already reads that key asks for it too.

    Returns:
        One command (with a short ``#`` comment where it needs one) per line.
    """
    out = [f"git fetch origin {branch} && git checkout {branch}" if remote else f"git checkout {branch}"]
    if prefix.strip("/"):
        out.append(f"cd {prefix.strip('/')}")
    if (project / "packages.yml").is_file() or (project / "dependencies.yml").is_file():
        out.append("dbt deps")
    if warehouse is not None and repo is not None and warehouse.is_file() and not _tracked(repo, warehouse):
        try:
            where = str(warehouse.resolve().relative_to(project.resolve()))
        except ValueError:
            where = warehouse.name
        if _is_sample(project, repo, prefix):
            out.append(f"dataeng-crew sample   # makes {where}, the sample warehouse (not in git)")
        elif not has_seeds(project):
            out.append(f"# the profile reads {where}, which is not in git: point it at your warehouse")
    if masked or _reads_pii_key(project):
        out.append(f"export {PII_KEY_ENV}=$(openssl rand -hex 16)   # any key to review; production sets its own, "
                   "never committed")
    if has_seeds(project):
        out.append("dbt seed")
    out.append("dbt build")
    return out
