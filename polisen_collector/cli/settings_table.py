"""`python3 -m polisen_collector.cli.settings_table`: print the README's table of settings."""

from __future__ import annotations

from polisen_collector.cli.common import quiet_on_closed_pipe
from polisen_collector.config import settings_table


@quiet_on_closed_pipe
def main(argv: list[str] | None = None) -> int:
    print(settings_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
