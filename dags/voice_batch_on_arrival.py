"""
### voice_batch_on_arrival: a run of voice_batch for the scripts that land in S3

S3 event notifications of the scripts bucket feed an SQS queue; an AssetWatcher's
MessageQueueTrigger (in the triggerer) reads the queue, and each batch of messages is an event
of the Asset `voicebatch_script_arrivals`, which schedules this DAG.

1. **select_scripts**: the S3 keys the messages name that are scripts under the deployment's
   scripts location (`VOICEBATCH_SCRIPTS_URI`), one selection per folder; everything else
   (S3's test event, deletions, outputs, voices, other files) is logged and left out.
2. **start_voice_batch** (one task per folder): triggers `voice_batch` with conf
   `{"scripts_uri": <the folder>, "script_files": [<what arrived>]}`: the same pipeline, its
   other Params at their defaults.

Only when the deployment names a queue (`VOICEBATCH_ARRIVALS_QUEUE_URL`, or
`[voicebatch] arrivals_queue_url`): without one, this file defines no DAG.
"""

from __future__ import annotations

import datetime
import os

from airflow.sdk import Asset, AssetWatcher, dag, task
from airflow.sdk.configuration import conf

# Read where the DAG is parsed (the dag-processor) and serialized into the trigger's kwargs: the
# triggerer polls what the deployment configured, never anything a run's conf says.
QUEUE_URL = os.environ.get("VOICEBATCH_ARRIVALS_QUEUE_URL") or conf.get("voicebatch", "arrivals_queue_url", fallback="")
CONN_ID = (
    os.environ.get("VOICEBATCH_ARRIVALS_AWS_CONN_ID")
    or conf.get("voicebatch", "arrivals_aws_conn_id", fallback="")
    or os.environ.get("VOICEBATCH_AWS_CONN_ID", "aws_default")
)
# Seconds between polls when the queue is empty (each poll also waits up to 20 s for a message).
POLL_SECONDS = int(os.environ.get("VOICEBATCH_ARRIVALS_POLL_SECONDS") or 10)

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": datetime.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": datetime.timedelta(minutes=10),
}


def arrivals_asset(queue_url: str, conn_id: str) -> Asset:
    """The Asset whose events are batches of the queue's messages (the trigger deletes what it read)."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(
        scheme="sqs",
        sqs_queue=queue_url,
        aws_conn_id=conn_id,
        max_messages=10,  # SQS's most per receive
        wait_time_seconds=20,  # long polling: a message is seen as it arrives, an empty queue costs little
        waiter_delay=POLL_SECONDS,
    )
    return Asset(
        name="voicebatch_script_arrivals",
        extra={"description": "scripts that landed in S3: an event per batch of S3 notifications from the queue"},
        watchers=[AssetWatcher(name="voicebatch_sqs_arrivals", trigger=trigger)],
    )


def voice_batch_on_arrival(arrivals: Asset) -> None:
    @dag(
        dag_id="voice_batch_on_arrival",
        schedule=[arrivals],
        start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        catchup=False,
        description="A voice_batch run for the scripts that land in S3 (S3 notifications through SQS)",
        doc_md=__doc__,
        default_args=DEFAULT_ARGS,
        tags=["voicebatch", "tts", "arrivals"],
    )
    def on_arrival() -> None:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        @task
        def select_scripts(triggering_asset_events: dict | None = None) -> list[dict]:
            from voicebatch.inputs.arrivals import arrival_runs, arrivals_in_messages

            messages = [
                message
                for events in (triggering_asset_events or {}).values()
                for event in events
                for message in ((event.extra or {}).get("payload") or {}).get("message_batch") or []
            ]
            runs = arrival_runs(arrivals_in_messages(messages), os.environ.get("VOICEBATCH_SCRIPTS_URI", ""))
            return [run.conf() for run in runs]

        TriggerDagRunOperator.partial(
            task_id="start_voice_batch",
            trigger_dag_id="voice_batch",
            trigger_run_id="{{ run_id }}__{{ ti.map_index }}",  # a retry finds its run instead of a second one
            skip_when_already_exists=True,
            logical_date=None,  # no logical date: scripts_uri is the folder itself, not a dated sub-folder
            openlineage_inject_parent_info=False,  # its conf key is no Param: voice_batch would refuse the run
            map_index_template="{{ task.conf['scripts_uri'] }}",
        ).expand(conf=select_scripts())

    on_arrival()


if QUEUE_URL:
    voice_batch_on_arrival(arrivals_asset(QUEUE_URL, CONN_ID))
