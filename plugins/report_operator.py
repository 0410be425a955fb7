"""RunReportOperator: publishes a voice_batch run's report, whatever the stages did.

It runs after every stage (``all_done``) and carries the "Run report" link, so a failed run,
even one whose plan failed before any synthesis, links to a report that says which stage
failed and why. With ``strict`` it fails when any voice, script or input failed, or a chunk
was quarantined (it never passed verification).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from f5_operator import RunReportLink

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)
# Life of the presigned links in report.json and report.shared.html (seconds; at most 7 days).
SHARE_SECONDS_ENV = "VOICEBATCH_SHARE_SECONDS"


class RunReportOperator(BaseOperator):
    """Build and publish ``runs/<dag_id>/<run_id>/report.json`` and ``report.html``.

    :param output_uri: output root: a local path or ``s3://bucket/prefix``
    :param aws_conn_id: Airflow AWS connection for S3
    :param strict: fail when any voice, script or input failed or a chunk was quarantined
        (templated: "True"/"False")
    """

    template_fields: Sequence[str] = ("output_uri", "aws_conn_id", "strict")
    operator_extra_links = (RunReportLink(),)
    ui_color = "#d6e4f4"

    def __init__(
        self, *, output_uri: str, aws_conn_id: str | None = "aws_default", strict: bool | str = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.output_uri = output_uri
        self.aws_conn_id = aws_conn_id
        self.strict = strict

    def execute(self, context: Context) -> dict:
        import os

        from airflow.sdk.exceptions import AirflowFailException

        from voicebatch.locations.storage import PRESIGN_SECONDS, is_s3_uri, local_path
        from voicebatch.publish.notify.summary import strict_failure
        from voicebatch.publish.report import report_prefix, share_report
        from voicebatch.run.layout import staging_prefix
        from voicebatch.run.report import report_run

        from voicebatch_airflow import airflow_errors, output_allowed, storage_opener
        from voicebatch_reports import XCOM_KEY

        run_id = context["run_id"]
        dag_run = context.get("dag_run")
        started = dag_run.start_date.isoformat() if dag_run and dag_run.start_date else None
        expires = int(os.environ.get(SHARE_SECONDS_ENV) or PRESIGN_SECONDS)
        with airflow_errors():
            output_allowed(self.output_uri, first=False)  # refused: nowhere to write; list_voices said why
            out = storage_opener(self.aws_conn_id)(self.output_uri)
            summary = report_run(
                out, staging_prefix(run_id), dag_id=self.dag_id, run_id=run_id, started_at=started, expires=expires
            )
            # Where the API server's plugin finds this run's report (the "Run report" link and tab).
            uri = self.output_uri if is_s3_uri(self.output_uri) else str(local_path(self.output_uri).resolve())
            location = {"output_uri": uri, "aws_conn_id": self.aws_conn_id or None}
            context["ti"].xcom_push(key=XCOM_KEY, value={**location, "prefix": report_prefix(self.dag_id, run_id)})
            if is_s3_uri(self.output_uri):  # a copy with presigned links, to share outside Airflow
                summary["shared_report"] = share_report(out, self.dag_id, run_id, expires)
                log.info("shareable report (links valid %d s): %s", expires, summary["shared_report"])
        log.info("report: %s", out.uri_for(summary["report"]))
        for failure in summary["failed_stages"]:  # final_check turns the run red for these
            log.error("stage %s", failure)
        why = strict_failure(summary)  # the callback names the same reason (voicebatch.publish.notify)
        if _flag(self.strict) and why and not summary["failed_stages"]:  # a failed stage is red already
            raise AirflowFailException(why)
        return summary


def _flag(value: bool | str) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"
