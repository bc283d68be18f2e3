"""Prefect's thread-pool task runner, stopping its running tasks when the flow is interrupted.

Prefect cancels a thread pool's queued tasks when a flow is interrupted, then waits for the running
ones: a training in a worker thread would go on to its last epoch. This runner also raises the
process's stop flag (`tasks.core.interrupt`), which trainings and image loops check between batches.
"""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from tasks.core import interrupt


class StoppingThreadPoolTaskRunner(ThreadPoolTaskRunner):
    def cancel_all(self) -> None:
        interrupt.stop_on_base_exception()  # only while an interrupt unwinds the flow, not on a normal exit
        super().cancel_all()
