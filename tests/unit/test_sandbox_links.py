"""A project whose files reach outside it is refused before dbt reads anything (no secret reaches an output)."""

import os

import duckdb
import pytest

from dataeng_crew.errors import UnsafeArtifactError
from dataeng_crew.tools.sandbox import prepare_sandbox


def _project(tmp_path):
    project = tmp_path / "p"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\nprofile: p\nconfig-version: 2\nversion: '1'\n")
    (project / "models" / "ok.sql").write_text("select 1 as n\n")
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    return project, warehouse


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/passwd", "../../outside.sql"])
def test_a_link_leaving_the_project_is_refused_naming_the_file(tmp_path, target):
    project, warehouse = _project(tmp_path)
    (tmp_path / "outside.sql").write_text("select 'secret' as s\n")
    os.symlink(target, project / "models" / "leak.sql")
    with pytest.raises(UnsafeArtifactError, match="models/leak.sql is a link to .*outside the project"):
        prepare_sandbox(project, warehouse, tmp_path / "box")


def test_links_inside_the_project_and_fifos(tmp_path):
    project, warehouse = _project(tmp_path)
    os.symlink("ok.sql", project / "models" / "alias.sql")  # stays inside: kept
    box = prepare_sandbox(project, warehouse, tmp_path / "box")
    assert (box.project / "models" / "alias.sql").read_text() == "select 1 as n\n"
    os.mkfifo(project / "models" / "pipe.sql")
    with pytest.raises(UnsafeArtifactError, match="models/pipe.sql is not a regular file"):
        prepare_sandbox(project, warehouse, tmp_path / "box2")


def test_a_committed_link_leaving_the_project_is_refused_from_git(tmp_path):
    import subprocess

    project, warehouse = _project(tmp_path)
    os.symlink("/proc/self/environ", project / "models" / "leak.sql")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(project), *args], check=True)
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with pytest.raises(UnsafeArtifactError, match="models/leak.sql .*is a link to /proc/self/environ"):
        prepare_sandbox(project, warehouse, tmp_path / "box", repo=project, base=head)
