"""The daily employee lifecycle evaluation (automatic activation and archiving). Pure."""

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
