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


class RunReportLink(BaseOperatorLink):
    """The run's report, served by the API server (plugins/voicebatch_reports.py): an http(s)
    link that works for local and S3 outputs alike and never expires. It shows "not ready
    yet" until the report task has run."""

    name = "Run report"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        from voicebatch_reports import report_url

        try:
            from airflow.sdk.configuration import conf
        except ImportError:  # pragma: no cover - older task SDKs
            from airflow.configuration import conf
        return report_url(ti_key.dag_id, ti_key.run_id, conf.get("api", "base_url", fallback=None))


class F5SynthesizeOperator(BaseOperator):
    """Synthesize the chunks of one staged batch spec with F5-TTS.

    :param batch_key: storage key of the batch spec (written by the plan task)
    :param output_uri: output root: a local path or ``s3://bucket/prefix``
    :param aws_conn_id: Airflow AWS connection for S3 (its extra may set ``endpoint_url``)
    :param model: model spec: a name, a model directory or an ``s3://`` prefix
    """

    template_fields: Sequence[str] = ("batch_key", "output_uri", "aws_conn_id", "model")
    operator_extra_links = (RunReportLink(),)
    ui_color = "#f4d6a0"

    def __init__(
        self,
        *,
        batch_key: str,
        output_uri: str,
        aws_conn_id: str | None = "aws_default",
        model: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_key = batch_key
        self.output_uri = output_uri
        self.aws_conn_id = aws_conn_id
        self.model = model
        self._lease = None

    def execute(self, context: Context) -> dict:
        import json

        from voicebatch.run.outcomes import batch_part
        from voicebatch.run.synthesize import synthesize_batch
        from voicebatch.synthesis.devices import lease_device
        from voicebatch.synthesis.f5_output import f5_output_to_log
        from voicebatch.synthesis.warm import task_engine

        from voicebatch_airflow import model_store, run_stage, speech_model_store

        run_id = context["run_id"]
        part = batch_part(self.batch_key)
        with run_stage(self.aws_conn_id, self.output_uri, run_id, "synthesize", part) as stage:
            spec = json.loads(stage.out.get_bytes(self.batch_key))
            scripts = [s["id"] for s in spec["scripts"]]
            context["batch_label"] = batch_label(scripts, len(spec["requests"]))  # map_index_template
            log.info(
                "%s: %d chunk(s) of %s, voices %s",
                self.batch_key,
                len(spec["requests"]),
                ", ".join(scripts),
                ", ".join(spec["voices"]),
            )
            files = model_store(stage.open_uri).resolve(self.model)
            if files.random_weights:
                log.warning("model %s has RANDOM WEIGHTS: the audio is noise, not a voice", files.name)
            self._lease = lease_device()
            try:
                log.info("synthesizing %s on %s with %s", self.batch_key, self._lease.device, files.name)
                # The GPU's warm engine server when there is one (the model stays loaded between tasks).
                with task_engine(files, self._lease) as engine, f5_output_to_log(log):
                    summary = synthesize_batch(
                        self.batch_key,
                        stage.out,
                        stage.staging,
                        engine,
                        speech_models=speech_model_store(stage.open_uri),
                    )
            finally:
                self._lease.release()
        log.info("batch done: %s", summary)
        return summary

    def on_kill(self) -> None:
        if self._lease is not None:
            self._lease.release()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the voices (registry prefixes) and every script file the batch reads;
        outputs: the output prefix of every script it speaks for. From the batch spec that
        plan wrote, which names its scripts."""
        import json

        from airflow.providers.openlineage.extractors import OperatorLineage

        from voicebatch_airflow import storage_opener

        out = storage_opener(self.aws_conn_id)(self.output_uri)
        spec = json.loads(out.get_bytes(self.batch_key))
        inputs = [_dataset(out.uri_for(f"voices/{voice}/{clip}/")) for voice, clip in spec["voices"].items()]
        sources = dict.fromkeys(_script_file(s["source"]) for s in spec["scripts"])  # several items, one file
        inputs += [_dataset(source) for source in sources]
        outputs = [_dataset(out.uri_for(f"audio/{s['id']}/{s['output_hash']}/")) for s in spec["scripts"]]
        return OperatorLineage(inputs=inputs, outputs=outputs)


def batch_label(scripts: list[str], chunks: int, width: int = 80) -> str:
    """What a synthesize task speaks, as its label in the UI: ``hello, duet (3 chunks)``."""
    names = ", ".join(scripts)
    if len(names) > width:
        names = names[: width - 1].rsplit(", ", 1)[0] + f", … ({len(scripts)} scripts)"
    return f"{names} ({chunks} chunk{'s' if chunks != 1 else ''})"


def _script_file(source: str) -> str:
    """The file of a script's source (``.../lines.jsonl item 3`` -> ``.../lines.jsonl``)."""
    import re

    return re.sub(r" (?:item|row|line) \d+$", "", source)


def _dataset(uri: str) -> Any:
    from openlineage.client.event_v2 import Dataset

    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        return Dataset(namespace=f"s3://{bucket}", name=key)
    return Dataset(namespace="file", name=uri)
