"""Every exit code of the collector's tools, in one place (the README's exit-code table).

The collector and the other tools: 0 done, 1 failed, 2 bad configuration or credentials
(refused before any work), 3 another run holds the lock. health_check.py speaks the
Nagios plugin convention instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3

NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
