"""F5SynthesizeOperator: speaks one batch spec of a voice_batch run on a leased GPU.

Thin: the constructor only assigns; ``execute`` builds the storage and model store, leases
a GPU, loads the model and calls the voicebatch library. The extra link opens the run
report; OpenLineage sees the voices and scripts as inputs and the outputs they become.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

REPORT_URL_KEY = "report_url"


class RunReportLink(BaseOperatorLink):
    """The run's report.html (a presigned link for S3; pushed by the task when it runs)."""

    name = "Run report"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(key=REPORT_URL_KEY, ti_key=ti_key) or ""


class F5SynthesizeOperator(BaseOperator):
    """Synthesize the chunks of one staged batch spec with F5-TTS.

    :param batch_key: storage key of the batch spec (written by the plan task)
    :param output_uri: output root: a local path or ``s3://bucket/prefix``
    :param aws_conn_id: Airflow AWS connection for S3 (its extra may set ``endpoint_url``)
    :param model: model spec: a name, a model directory or an ``s3://`` prefix
    :param batch_frames: padded mel frames per forward pass
    """

    template_fields: Sequence[str] = ("batch_key", "output_uri", "aws_conn_id", "model", "batch_frames")
    operator_extra_links = (RunReportLink(),)
    ui_color = "#f4d6a0"

    def __init__(
        self,
        *,
        batch_key: str,
        output_uri: str,
        aws_conn_id: str | None = "aws_default",
        model: str = "F5TTS_v1_Base",
        batch_frames: int | str = 16_384,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_key = batch_key
        self.output_uri = output_uri
        self.aws_conn_id = aws_conn_id
        self.model = model
        self.batch_frames = batch_frames
        self._lease = None

    def execute(self, context: Context) -> dict:
        from voicebatch.report import report_prefix
        from voicebatch.runs import staging_prefix, synthesize_batch
        from voicebatch.synthesis.devices import lease_device
        from voicebatch.synthesis.engine import Engine

        from voicebatch_airflow import model_store, speech_model_store, storage_opener

        open_uri = storage_opener(self.aws_conn_id)
        out = open_uri(self.output_uri)
        run_id = context["run_id"]
        report_key = report_prefix(self.dag_id, run_id) + "report.html"
        context["ti"].xcom_push(key=REPORT_URL_KEY, value=out.presign(report_key))
        files = model_store(open_uri).resolve(self.model)
        if files.random_weights:
            log.warning("model %s has RANDOM WEIGHTS: the audio is noise, not a voice", files.name)
        self._lease = lease_device()
        try:
            log.info("synthesizing %s on %s with %s", self.batch_key, self._lease.device, files.name)
            engine = Engine(files, device=self._lease.device)
            summary = synthesize_batch(
                self.batch_key,
                out,
                staging_prefix(run_id),
                engine,
                int(self.batch_frames),
                speech_models=speech_model_store(open_uri),
            )
        finally:
            self._lease.release()
        log.info("batch done: %s", summary)
        return summary

    def on_kill(self) -> None:
        if self._lease is not None:
            self._lease.release()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        import json

        from airflow.providers.openlineage.extractors import OperatorLineage

        from voicebatch_airflow import storage_opener

        out = storage_opener(self.aws_conn_id)(self.output_uri)
        spec = json.loads(out.get_bytes(self.batch_key))
        inputs = [_dataset(out.uri_for(f"voices/{voice}/{clip}/")) for voice, clip in spec["voices"].items()]
        inputs += [_dataset(s["source"]) for s in spec.get("scripts", [])]
        outputs = [_dataset(out.uri_for(f"audio/{s['id']}/{s['output_hash']}/")) for s in spec.get("scripts", [])]
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _dataset(uri: str) -> Any:
    from openlineage.client.event_v2 import Dataset

    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        return Dataset(namespace=f"s3://{bucket}", name=key)
    return Dataset(namespace="file", name=uri)
