"""One set of exit codes for every `kiosk` command (README, "Exit codes")."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: The command ran, and found nothing (no entry fits the question) or found problems
    #: (content with errors, a failing `kiosk doctor` check).
    PROBLEMS = 1
    #: Bad input: a wrong option, a config or file that cannot be used; the message says what
    #: to fix. Nothing was changed.
    BAD_INPUT = 2
    #: Stopped with Ctrl+C (128 + SIGINT); nothing was changed.
    INTERRUPTED = 130
