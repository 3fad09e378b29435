"""The README documents every setting with its real default and the real test command."""

from pathlib import Path

from polisen_collector.config import SETTINGS, settings_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_settings_table_is_current():
    start = README.index("<!-- settings:start -->") + len("<!-- settings:start -->")
    end = README.index("<!-- settings:end -->")
    assert README[start:end].strip() == settings_table()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in README


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest" in README and '/venv/bin/python" -m pytest' in ci
    assert "-r requirements-lock.txt" in ci  # the exact versions of requirements-dev.txt's ranges
    assert "-r requirements-dev.txt" in (Path(__file__).resolve().parent.parent / ".ci" / "newest").read_text()
