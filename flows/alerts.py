"""Alerts for served deployments: Prefect automations that send a notification when a deployment's flow
run fails or crashes (a scheduled nightly train, say), and when the promotion gate keeps the champion
(the `house-pipeline.model.not-promoted` event), through a Prefect notification block.

One setting turns them on: HOUSE_PIPELINE_ALERT_URL, a webhook URL (Slack, Teams, a chat bot, an HTTP
receiver of your own); `serve` then creates, or replaces, the block and the automation, so they are
declared here, next to the deployments. Other channels (email, Slack's own block) are other Prefect
notification blocks: create one in the UI and point the automation at it.
"""

from __future__ import annotations

import os

ALERT_URL_ENV = "HOUSE_PIPELINE_ALERT_URL"
BLOCK_NAME = "house-pipeline-alerts"
AUTOMATION_NAME = "house-pipeline: a deployment run failed"
NOT_PROMOTED_AUTOMATION = "house-pipeline: a trained model was not promoted"
FAILED_OR_CRASHED = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}


def alert_url() -> str | None:
    return os.environ.get(ALERT_URL_ENV) or None


def ensure_alerts(url: str) -> None:
    """The webhook block and the automation, created or replaced (serving twice keeps one of each)."""
    from prefect.automations import Automation, EventTrigger, Posture
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.actions import SendNotification

    from tasks.lifecycle.registry import NOT_PROMOTED_EVENT

    block = CustomWebhookNotificationBlock(name=BLOCK_NAME, url=url, method="POST",
                                           json_data={"subject": "{{subject}}", "body": "{{body}}"})
    block_id = block.save(BLOCK_NAME, overwrite=True)
    notify = {"block_document_id": block_id}
    _replace(Automation(
        name=AUTOMATION_NAME,
        description="Notify when a flow run of a deployment (scheduled or started from the UI) fails or crashes.",
        trigger=EventTrigger(expect=FAILED_OR_CRASHED, match={"prefect.resource.id": "prefect.flow-run.*"},
                             match_related={"prefect.resource.role": "deployment"}, posture=Posture.Reactive,
                             threshold=1),
        actions=[SendNotification(**notify, subject="house-pipeline: {{ flow_run.name }} {{ flow_run.state.name }}",
                                  body="Flow run {{ flow_run.name }} of deployment {{ deployment.name }} ended "
                                       "{{ flow_run.state.name }}: {{ flow_run.state.message }}")],
    ))
    _replace(Automation(
        name=NOT_PROMOTED_AUTOMATION,
        description="Notify when the promotion gate keeps the champion (a worse model, or drifted data).",
        trigger=EventTrigger(expect={NOT_PROMOTED_EVENT}, match={"prefect.resource.id": "house-pipeline.model.*"},
                             posture=Posture.Reactive, threshold=1),
        actions=[SendNotification(**notify, subject="house-pipeline: model version {{ event.payload.version }} not "
                                  "promoted", body="The promotion gate kept champion version "
                                  "{{ event.payload.champion }}: {{ event.payload.reasons | join('; ') }}")],
    ))


def _replace(automation) -> None:
    """Create `automation`, replacing one of the same name (serving or starting a worker twice keeps one)."""
    from prefect.automations import Automation

    try:
        Automation.read(name=automation.name).delete()
    except ValueError:  # none yet
        pass
    automation.create()


ZOMBIE_AUTOMATION = "house-pipeline: a flow run stopped sending heartbeats"
HEARTBEAT_SECONDS = 30  # PREFECT_FLOWS_HEARTBEAT_FREQUENCY of the runs that workers and `serve` start (Prefect: 180)
MISSED_HEARTBEATS = 3  # a run is a zombie after this many heartbeats did not come
RUN_ENDED = {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
             "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"}


def ensure_zombie_detection(heartbeat_seconds: int) -> None:
    """Prefect's recipe for runs whose machine died (a worker killed, a host lost): a run that sent a heartbeat
    and then neither another one nor an end within MISSED_HEARTBEATS heartbeats is marked Crashed, so it stops
    showing Running for ever, alerts fire and a re-run can resume from its checkpoint."""
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger, Posture
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState

    window = MISSED_HEARTBEATS * heartbeat_seconds
    _replace(Automation(
        name=ZOMBIE_AUTOMATION,
        description="Mark a flow run Crashed when its heartbeats stop (its process or machine died).",
        trigger=EventTrigger(after={"prefect.flow-run.heartbeat"}, expect=RUN_ENDED,
                             match={"prefect.resource.id": "prefect.flow-run.*"},
                             for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                             within=timedelta(seconds=window)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {window} s: the process running it "
                                            "(or its machine) stopped; run it again to resume from its checkpoint")],
    ))
