"""RunCallbackOperator: when a voice_batch run ends, POST its signed summary to ``callback_url``.

A teardown task after the run's verdict (``final_check``): it runs whatever the stages did, and
Airflow leaves teardown tasks out of a run's state, so a callback that cannot be delivered never
turns a green run red (nor a red one green). What it sends is built from the run report
(``voicebatch.publish.notify``); where it may send is the deployment's ``VOICEBATCH_CALLBACK_ALLOWED``;
what it signs with is the password of the Airflow connection ``voicebatch_callback``. The
outcome (never the secret, never the receiver's answer beyond its status) is the task's return
value and ``runs/<dag_id>/<run_id>/callback.json`` beside the report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from voicebatch.locations.storage import Storage
    from voicebatch.publish.notify.allowed import CallbackAllowList

log = logging.getLogger(__name__)
SIGNING_CONN_ID = "voicebatch_callback"
# The stages whose failure turns a run red, in the order they run (names the failure when no report).
STAGES = ("list_voices", "plan", "synthesize", "publish", "report")


class RunCallbackOperator(BaseOperator):
    """POST the run's summary to ``callback_url`` (nothing when it is empty: the task skips).

    :param callback_url: where to POST (templated; among ``VOICEBATCH_CALLBACK_ALLOWED``)
    :param output_uri: the run's output root, where its report is (templated)
    :param aws_conn_id: Airflow AWS connection for S3 (templated)
    :param strict: the run's ``strict`` Param ("True"/"False", templated): names why a run whose
        stages all finished is red
    :param verdict_task_id: the task whose state is the run's (success: green; anything else: red)
    :param signing_conn_id: the connection whose password is the HMAC secret
    """

    template_fields: Sequence[str] = ("callback_url", "output_uri", "aws_conn_id", "strict")
    ui_color = "#e8dff5"

    def __init__(
        self,
        *,
        callback_url: str | None,
        output_uri: str,
        aws_conn_id: str | None = "aws_default",
        strict: bool | str = False,
        verdict_task_id: str = "final_check",
        signing_conn_id: str = SIGNING_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.callback_url = callback_url
        self.output_uri = output_uri
        self.aws_conn_id = aws_conn_id
        self.strict = strict
        self.verdict_task_id = verdict_task_id
        self.signing_conn_id = signing_conn_id

    def execute(self, context: Context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from voicebatch.publish.notify.delivery import Delivery, send_callback
        from voicebatch.publish.notify.summary import run_summary

        if not self.callback_url:
            raise AirflowSkipException("no callback_url: nothing to send")
        ti, run_id = context["ti"], context["run_id"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
        state = "success" if states.get(self.verdict_task_id) == "success" else "failed"
        out, report = self._report(run_id)
        summary = run_summary(
            dag_id=ti.dag_id,
            run_id=run_id,
            state=state,
            report=report,
            uri_for=out.uri_for if out else None,
            strict=str(self.strict).strip().lower() == "true",
            failed_tasks=failed_stages(states),
        )
        log.info("run %s ended %s; calling back", run_id, state)
        secret = self._secret()
        if secret is None:
            from voicebatch.publish.notify.allowed import shown_url

            why = (
                f"callback_url: not sent: the Airflow connection {self.signing_conn_id!r} (its password signs "
                "callbacks) is not defined where voicebatch runs"
            )
            log.warning("callback not sent: %s", why)
            delivery = Delivery("refused", shown_url(self.callback_url), error=why)
        else:
            delivery = send_callback(self.callback_url, summary, secret, allowed=callback_allow_list())
        record = {**delivery.as_record(), "event_id": summary["event_id"], "state": state}
        self._record(out, run_id, record)
        return record

    def _report(self, run_id: str) -> tuple[Storage | None, dict | None]:
        """The run's output storage and its report.json; (storage, None) when no report was
        published, (None, None) when the output cannot be opened (refused, unreachable)."""
        import json

        from voicebatch.publish.report import report_prefix
        from voicebatch.run.outcomes import error_line

        from voicebatch_airflow import allow_list, storage_opener

        try:
            allow_list().check_output("output_uri", self.output_uri)
            out = storage_opener(self.aws_conn_id or None)(self.output_uri)
        except Exception as e:  # the callback still goes out, saying what is known
            log.warning("run report not read: %s", error_line(e))
            return None, None
        key = report_prefix(self.dag_id, run_id) + "report.json"
        try:
            return out, json.loads(out.get_bytes(key)) if out.exists(key) else None
        except Exception as e:
            log.warning("run report not read: %s", error_line(e))
            return out, None

    def _secret(self) -> bytes | None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            password = BaseHook.get_connection(self.signing_conn_id).password
        except AirflowNotFoundException:
            return None
        return password.encode("utf-8") if password else None

    def _record(self, out: Storage | None, run_id: str, record: dict) -> None:
        from voicebatch.publish.publishing import json_bytes
        from voicebatch.publish.report import report_prefix
        from voicebatch.run.outcomes import error_line

        if out is None:
            return
        key = report_prefix(self.dag_id, run_id) + "callback.json"
        try:
            out.put_bytes(key, json_bytes(record), "application/json")
        except Exception as e:  # the outcome is in the task's return value and log all the same
            log.warning("could not record the callback's outcome at %s: %s", key, error_line(e))


def failed_stages(states: dict[str, str]) -> list[str]:
    """The failed stage tasks, in stage order, from Airflow's task states (a mapped task's
    instances are ``<task_id>_<map_index>``)."""
    found = []
    for stage in STAGES:
        for name, state in sorted(states.items()):
            mapped = name.startswith(stage + "_") and name[len(stage) + 1 :].isdigit()
            if (name == stage or mapped) and state == "failed":
                found.append(name)
    return found


def callback_allow_list() -> CallbackAllowList:
    """``VOICEBATCH_CALLBACK_ALLOWED`` from the environment, else Airflow's ``[voicebatch]
    callback_allowed`` (as the locations' allow-list is read)."""
    from airflow.sdk.configuration import conf

    from voicebatch.publish.notify.allowed import CALLBACK_ALLOWED_ENV, CallbackAllowList

    env = dict(os.environ)
    key = CALLBACK_ALLOWED_ENV.removeprefix("VOICEBATCH_").lower()
    if CALLBACK_ALLOWED_ENV not in env and (value := conf.get("voicebatch", key, fallback=None)):
        env[CALLBACK_ALLOWED_ENV] = value
    return CallbackAllowList.from_env(env)
