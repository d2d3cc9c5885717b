import pytest

from dataeng_crew.errors import PublishError
from tests.conftest import git
from dataeng_crew.tools.git_local import commit_to_branch, head_commit


def _state(repo):
    return git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "rev-parse", "HEAD"), \
        git(repo, "symbolic-ref", "HEAD"), (repo / "dbt_project" / "dbt_project.yml").read_text()


def test_commit_to_branch_never_touches_the_working_tree(git_project):
    repo = git_project.parent
    (git_project / "README.md").write_text("user's uncommitted edit\n")  # dirty tree must survive
    (repo / "scratch.txt").write_text("untracked\n")
    git(repo, "add", "scratch.txt")  # and a staged file
    before = _state(repo)
    base = head_commit(repo)
    sha = commit_to_branch(repo, base, "dataeng-crew/x", {"dbt_project/models/a.sql": "select 1\n"}, "msg")
    assert _state(repo) == before
    assert git(repo, "rev-parse", "dataeng-crew/x") == sha
    assert git(repo, "rev-list", "--count", f"{base}..{sha}") == "1"
    assert git(repo, "show", f"{sha}:dbt_project/models/a.sql") == "select 1"
    assert "scratch.txt" not in git(repo, "ls-tree", "-r", "--name-only", sha)


def test_rerun_converges_to_one_commit_on_base(git_project):
    repo = git_project.parent
    base = head_commit(repo)
    commit_to_branch(repo, base, "dataeng-crew/x", {"a.sql": "1"}, "first")
    second = commit_to_branch(repo, base, "dataeng-crew/x", {"a.sql": "2"}, "second")
    assert git(repo, "rev-list", "--count", f"{base}..dataeng-crew/x") == "1"
    assert git(repo, "rev-parse", "dataeng-crew/x") == second


def test_checked_out_branch_is_refused(git_project):
    repo = git_project.parent
    with pytest.raises(PublishError, match="checked out"):
        commit_to_branch(repo, head_commit(repo), "main", {"a.sql": "1"}, "m")


def test_empty_repository_is_a_clear_error(tmp_path):
    git(tmp_path, "init", "-q")
    with pytest.raises(PublishError, match="no commit yet"):
        head_commit(tmp_path)


def test_every_commit_carries_the_trailer_and_foreign_commits_are_found(git_project):
    from dataeng_crew.tools.git_local import commit_message, foreign_commits, proposal_commit, trailer_of

    repo = git_project.parent
    base = head_commit(repo)
    ours = commit_to_branch(repo, base, "dataeng-crew/x", {"a.sql": "1"}, "first", proposal_id="20261130T1-x")
    assert trailer_of(commit_message(repo, ours)) == "20261130T1-x"
    assert proposal_commit(repo, "dataeng-crew/x", "20261130T1-x") == ours
    assert proposal_commit(repo, "dataeng-crew/x", "another") is None
    assert foreign_commits(repo, "dataeng-crew/x", base) == []
    git(repo, "switch", "-q", "dataeng-crew/x")
    git(repo, "commit", "-q", "--allow-empty", "-m", "a person's fix")
    person = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    assert foreign_commits(repo, "dataeng-crew/x", base) == [person]
    assert foreign_commits(repo, "dataeng-crew/none", base) == []
    with pytest.raises(PublishError, match="did not make") as info:
        commit_to_branch(repo, base, "dataeng-crew/x", {"a.sql": "2"}, "second")
    assert person[:7] in str(info.value) and "dataeng-crew revise" in str(info.value)
    assert git(repo, "rev-parse", "dataeng-crew/x") == person
