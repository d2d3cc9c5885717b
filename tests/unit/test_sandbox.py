"""The sandbox is the commit: the base commit's tree (not the working tree), plus installed packages."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from dataeng_crew.tools.sandbox import prepare_sandbox
from tests.project_fixtures import commit_all, git


def test_sandbox_holds_the_base_commit_and_the_installed_packages(tmp_path: Path):
    repo = tmp_path / "repo"
    project = repo / "analytics"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\nprofile: p\npackages-install-path: vendor\n")
    (project / "packages.yml").write_text("packages:\n  - local: ../libs/utils\n")
    (project / "models" / "a.sql").write_text("select 1 as id\n")
    (repo / ".gitignore").write_text("analytics/vendor/\n*.duckdb\n")
    commit_all(repo)
    base = git(repo, "rev-parse", "HEAD")
    (project / "models" / "a.sql").write_text("select broken\n")  # uncommitted edits stay out of the sandbox
    (project / "models" / "draft.sql").write_text("select 2\n")
    (project / "vendor" / "utils").mkdir(parents=True)  # installed packages are not in git: they are copied
    (project / "vendor" / "utils" / "dbt_project.yml").write_text("name: utils\n")
    warehouse = tmp_path / "wh.duckdb"
    duckdb.connect(str(warehouse)).close()
    box = prepare_sandbox(project, warehouse, tmp_path / "box", repo, base, "analytics")
    assert (box.project / "models" / "a.sql").read_text() == "select 1 as id\n"
    assert not (box.project / "models" / "draft.sql").exists()
    assert (box.project / "vendor" / "utils" / "dbt_project.yml").is_file()
    assert box.db_file.name == "wh.duckdb" and box.db_file.is_file()
    profile = yaml.safe_load((box.profiles_dir / "profiles.yml").read_text())["p"]["outputs"]
    assert profile["sandbox"]["settings"]["enable_external_access"] == "false"  # what agent SQL runs on
    assert "settings" not in profile["seed"]  # dbt seed reads the CSVs
    assert [a["read_only"] for a in profile["sandbox"]["attach"]] == [True]  # the warehouse, never written


@pytest.mark.parametrize(("rule", "ok"), [(">=99.0.0", False), ([">=1.0.0", "<99.0.0"], True), (None, True),
                                          ("<1.0.0", False)])
def test_the_projects_dbt_version_rule_is_honoured(tmp_path, rule, ok):
    """require-dbt-version: the tool passes --no-version-check to dbt (packages' own ranges), so it checks the
    project's rule itself and names the mismatch (exit 2) before anything runs."""
    from dataeng_crew.errors import ConfigError
    from dataeng_crew.tools.sandbox import require_dbt_version

    data = {"name": "p", "profile": "p", **({"require-dbt-version": rule} if rule else {})}
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump(data))
    if ok:
        require_dbt_version(tmp_path)
    else:
        with pytest.raises(ConfigError, match="requires dbt .*installed dbt-core is 1\\.") as info:
            require_dbt_version(tmp_path)
        assert info.value.exit_code == 2


def test_a_failed_offline_dbt_deps_leaves_no_download_folder(tmp_path, monkeypatch):
    import tempfile

    from dataeng_crew.errors import ConfigError

    project = tmp_path / "p"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(yaml.safe_dump({"name": "p", "profile": "p", "version": "1.0"}))
    (project / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")
    warehouse = tmp_path / "wh.duckdb"
    duckdb.connect(str(warehouse)).close()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("DBT_PACKAGE_HUB_URL", "http://127.0.0.1:9/")  # nothing listens: offline for sure
    with pytest.raises(ConfigError, match="dbt deps failed"):
        prepare_sandbox(project, warehouse, tmp_path / "box")
    assert not list(scratch.glob("dbt-downloads-*"))
    assert tempfile.tempdir == str(scratch)
