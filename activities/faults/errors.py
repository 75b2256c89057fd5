"""What fault providers raise; ``activities.faults.activities`` turns these into Temporal errors.

The tree, and how each branch leaves the activity::

    FaultError
     ├── UnsupportedFault    no provider for the target kind, or an action the kind lacks
     │                        → ApplicationError(type="UnsupportedFault", non_retryable=True)
     ├── ApplyError          the fault could not be applied
     │    ├── TargetNotFound  the declared target is not there (no such pid, unreadable pidfile)
     │    │                   → ApplicationError(type="FaultApplyError", non_retryable=True)
     │    └── NothingChanged  the apply failed before it changed anything: the fault was never applied
     │                        → ApplicationError(type="FaultApplyError", non_retryable=True), its message
     │                          "<label>: not applied: <why>" (``FaultRecord.not_applied``)
     └── RevertError         the revert did not complete
                              → ApplicationError(type="FaultRevertError"), retried by Temporal

Apply failures are never retried: a half-applied fault is reverted by the rollback, not applied again.
Revert failures are always retried: a revert is idempotent, and giving up leaves the fault in place.
"""

from __future__ import annotations


class FaultError(Exception):
    """Base of every error a fault provider raises on purpose."""


class UnsupportedFault(FaultError):
    """The target kind has no provider, or the action does not apply to the kind."""


class ApplyError(FaultError):
    """The fault could not be applied; retrying would not help (a user error or a refused action)."""


class TargetNotFound(ApplyError):
    """The declared target does not exist at the moment of the fault."""


class NothingChanged(ApplyError):
    """The apply failed before it changed anything (the target was not there): nothing to revert.

    Raised only where the provider is certain, e.g. a process fault whose pidfile is missing or whose signal was
    not delivered; an apply that may have changed something raises another :class:`ApplyError`.
    """


class RevertError(FaultError):
    """The revert did not complete; safe to retry because every revert is idempotent."""
