"""Job callbacks: when a run ends, a signed JSON summary POSTed to a URL the deployment allows.

- ``summary``: the payload, built from the run report (``voicebatch.callback/1``);
- ``signing``: the HMAC-SHA256 signature over the timestamp and the exact body, and its check;
- ``allowed``: the deployment's callback allow-list (``VOICEBATCH_CALLBACK_ALLOWED``);
- ``delivery``: one POST with bounded, jittered retries, no redirects, nothing of the answer kept
  but its status.

Plain Python: the Airflow task that calls it (plugins/callback_operator.py) only finds the
secret (a connection) and the run's verdict.
"""
