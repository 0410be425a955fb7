"""Run: the pipeline's stages, in the order the DAG runs them (list and ingest voices, plan,
synthesize, publish, report), each recording its outcome for the report.

The Airflow layer (dags/, plugins/) calls these functions and nothing below them; ``voicebatch synth``
(``voicebatch.cli``) uses the same script pipeline. May import every package but ``voicebatch.cli``.
"""
