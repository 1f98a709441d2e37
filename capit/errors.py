"""The one user-facing error type and capit's documented exit codes.

Every failure a user can cause or meet (bad input, a wrong passphrase, a provider that
is down) is raised as :class:`CapitError`; ``capit.cli.main`` prints its message on one
line to stderr and exits with its code.  The table in README.md is checked against
:class:`ExitCode` by the test suite, so a code added here must be documented there.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1  # a bug in capit: one line, the traceback only with -v
    USAGE = 2  # bad command line: unknown platform/option, bad amount, period, expiry, name
    CANCELLED = 3  # a confirmation was declined, or needed and no answer was available
    NOT_FOUND = 4  # no master key stored, no vault, no such remote key or slot
    AMBIGUOUS = 5  # a hash prefix or name matches several keys; nothing was changed
    UNLOCK = 6  # the vault did not open: wrong passphrase or recovery key, no usable slot
    VAULT = 7  # the vault file is damaged, altered, unsafe (symlink) or of an unknown version
    AUTH = 8  # the provider rejected the master key (invalid, or not a management key)
    PAYMENT = 9  # the provider wants payment: account out of credits (HTTP 402)
    RATE_LIMITED = 10  # the provider kept answering 429 within capit's bounded retries
    PROVIDER = 11  # the provider failed: 5xx after retries, a non-JSON or unexpected answer
    NETWORK = 12  # the provider could not be reached: refused, DNS, TLS, connect timeout
    UNCERTAIN = 13  # a create may or may not have happened; the message says what was found
    DELIVERY = 14  # the key could not be installed into the agent; it was revoked
    STATE = 15  # a local file problem: capit home unusable, lock held, bad local file
    INTERRUPTED = 130  # Ctrl-C


class CapitError(Exception):
    """An error meant for the person at the terminal: one line, one exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.INTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.code = ExitCode(code)

    def __str__(self) -> str:
        return self.message


def usage(message: str) -> CapitError:
    return CapitError(message, ExitCode.USAGE)
