"""The review of quarantined chunks in Airflow's UI: voice_batch's Human-in-the-loop tasks.

    report >> review_list >> review (Human-in-the-loop) >> apply_review

- ``review_list`` (with the Param ``review`` on) reads the run's report and lists every
  quarantined chunk of the scripts the run published (``voicebatch.run.review.review_items``); with
  none, or ``review`` off, it is skipped, and so are the two after it.
- ``review`` (Airflow's ``HITLOperator``) waits in the run for a reviewer: one form per run,
  each chunk with its text, what the recogniser heard, the difference and a link to hear the
  take (served by the /voicebatch app, with the UI's token). The reviewer picks one action
  (``ACTIONS``) and the chunks it is for (``Chunks``: ``script#chunk, ...``; empty: all of
  them; the others are accepted), and for an edited text the new text (``Text``). With no
  answer within ``VOICEBATCH_REVIEW_HOURS`` (default 24) the scheduler answers ``accept``.
- ``apply_review`` (pool ``f5_gpu``, the GPU queue) re-takes the chosen chunks on a leased
  device and publishes each script's new output, which supersedes the old one
  (``voicebatch.run.review.apply_review``); ``latest.json`` names it.

Light at import, as the DAG file that uses it (the control image has no voicebatch library).
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any
from urllib.parse import quote

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, get_current_context, task

log = logging.getLogger(__name__)

try:
    from voicebatch.run.review import ACTIONS, DEFAULT_ACTION
except ImportError:  # the control image: the same names (tests/test_review.py holds them equal)
    ACTIONS = ("accept", "re-take with a new seed", "re-take with edited text", "drop (silence of the same length)")
    DEFAULT_ACTION = "accept"

REVIEW_HOURS_ENV = "VOICEBATCH_REVIEW_HOURS"
REVIEW_PARAMS = {
    "chunks": Param(
        "",
        type=["null", "string"],
        title="Chunks",
        description="The chunks the action is for, as script#chunk separated by commas (e.g. hello#1, duet#0); "
        "empty: every chunk listed. The others are accepted.",
    ),
    "text": Param(
        "",
        type=["null", "string"],
        title="Text",
        description="For 're-take with edited text': the chunk's new text, as written (one chunk in Chunks).",
    ),
}


def review_timeout() -> datetime.timedelta:
    return datetime.timedelta(hours=float(os.environ.get(REVIEW_HOURS_ENV) or 24))


def add_review(reported: Any, queue: str, pool: str) -> Any:
    """The three review tasks after ``reported`` (the report task); returns the last one."""

    @task
    def review_list(params: dict | None = None, run_id: str | None = None, dag: Any = None) -> dict:
        import json

        from airflow.sdk.exceptions import AirflowSkipException

        from voicebatch.publish.report import report_prefix
        from voicebatch.run.review import review_body, review_items

        from voicebatch_airflow import airflow_errors, storage_opener

        if not params.get("review"):
            raise AirflowSkipException("review is off (Param review)")
        with airflow_errors():
            out = storage_opener(params["aws_conn_id"])(params["output_uri"])
            report = json.loads(out.get_bytes(report_prefix(dag.dag_id, run_id) + "report.json"))
        items = review_items(report)
        if not items:
            raise AirflowSkipException("no published chunk needs review")
        base = _report_files_url(dag.dag_id, run_id)
        log.info("%d chunk(s) to review: %s", len(items), ", ".join(i["name"] for i in items))
        return {"items": items, "body": review_body(items, lambda key: base + quote(key))}

    listed = review_list()
    review = HITLOperator(
        task_id="review",
        subject="Review {{ ti.xcom_pull(task_ids='review_list')['items'] | length }} quarantined chunk(s)",
        body="{{ ti.xcom_pull(task_ids='review_list')['body'] }}",
        options=list(ACTIONS),
        defaults=[DEFAULT_ACTION],
        params=REVIEW_PARAMS,
        response_timeout=review_timeout(),
    )

    @task(queue=queue, pool=pool)
    def apply_review(answer: dict, listing: dict, params: dict | None = None) -> list[dict]:
        from voicebatch.run.review import apply_review as apply
        from voicebatch.run.review import decide
        from voicebatch.synthesis.devices import lease_device
        from voicebatch.synthesis.warm import task_engine

        from voicebatch_airflow import airflow_errors, model_store, run_context, storage_opener

        with airflow_errors():
            edits = decide(listing["items"], answer.get("chosen_options") or [], answer.get("params_input"))
            if not edits:
                log.info("every chunk accepted: nothing to re-take")
                return []
            open_uri = storage_opener(params["aws_conn_id"])
            files = model_store(open_uri).resolve(params["model"])
            lease = lease_device()
            try:
                with task_engine(files, lease) as engine:
                    run = run_context(get_current_context())
                    return apply(params["output_uri"], edits, engine=engine, run=run, open_uri=open_uri)
            finally:
                lease.release()

    reported >> listed >> review
    return apply_review(review.output, listed)


def _report_files_url(dag_id: str, run_id: str) -> str:
    """Where the /voicebatch app serves the files of the run's report (the takes among them)."""
    from airflow.configuration import conf

    from voicebatch_reports import report_url

    return report_url(dag_id, run_id, conf.get("api", "base_url", fallback=None)) + "files/"
