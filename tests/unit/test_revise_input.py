"""Bad input to `revise` gets a clear error naming it (exit 2), never a traceback."""

from click.testing import CliRunner

from dataeng_crew.cli import main


def test_a_comment_file_that_is_not_utf8_names_the_file(tmp_path):
    bad = tmp_path / "comment.txt"
    bad.write_bytes(b"make it weekly \xff\xfe please")
    result = CliRunner().invoke(main, ["revise", "dataeng-crew/x", "--comment-file", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"--comment-file {bad}: not UTF-8" in result.output and "Traceback" not in result.output
