"""A local OpenRouter-compatible provider (management API + capped, billed completions).

Standard library only; see :mod:`capit.sandbox.server`.
"""

from capit.sandbox.server import CannedResponse, Faults, RecordedRequest, Sandbox

__all__ = ["CannedResponse", "Faults", "RecordedRequest", "Sandbox"]
