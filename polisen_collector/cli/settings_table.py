"""`python3 -m polisen_collector.cli.settings_table`: print the README's table of settings."""

from __future__ import annotations

from polisen_collector.cli.common import door
from polisen_collector.config import settings_table


@door
def main(argv: list[str] | None = None) -> int:
    print(settings_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
