"""The daily employee lifecycle evaluation (automatic activation and archiving). Pure; `run` applies it to
esr.employee and `cli` is `esr lifecycle run` (not re-exported here)."""

from esr.lifecycle.evaluate import (
    EmployeeFacts,
    LifecycleAction,
    LifecycleEvent,
    activation_due,
    apply_actions,
    archive_due,
    evaluate,
    evaluate_all,
)

__all__ = [
    "EmployeeFacts",
    "LifecycleAction",
    "LifecycleEvent",
    "activation_due",
    "apply_actions",
    "archive_due",
    "evaluate",
    "evaluate_all",
]
