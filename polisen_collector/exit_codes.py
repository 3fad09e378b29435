"""Every exit code of the collector's tools, in one place (the README's exit-code table).

The collector and the other tools: 0 done, 1 failed, 2 bad configuration or credentials
(refused before any work), 3 another run holds the lock, 128 + the signal's number when
SIGINT or SIGTERM stopped it (130, 143, as a shell reports a process the signal ended).
health_check.py speaks the Nagios plugin convention instead: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN.
"""

import signal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


def exit_code_of_signal(signum: int) -> int:
    """128 + the signal's number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM (systemctl stop, timeout)."""
    return 128 + signum


EXIT_INTERRUPTED = exit_code_of_signal(signal.SIGINT)  # Ctrl-C in a tool that is not a run: 130

NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
