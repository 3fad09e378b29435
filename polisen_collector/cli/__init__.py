"""The tools' command lines, one module per tool: arguments, settings, exit code.

Each is a console script of the package (pyproject.toml) and has a shim of a few lines at
the top of the repository for cron and `python3 <tool>.py`; both enter through launch.py.
What every tool shares is in common.py; the work itself is in the rest of the package.
"""
