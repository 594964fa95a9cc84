"""Keeps each case's viewflow process in step with the case state (see sync_case_tasks)."""


def sync_case_tasks(case, *, actor=None) -> None:
    """Make the case's open human task match its state and holding organisation."""


def start_case_flow(case) -> None:
    """Start the human-task process of a newly submitted (or appealed) case."""
