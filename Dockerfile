# voicebatch's images, on the official Airflow image. Two targets (docs/deploy/images.md):
#   control  api-server, scheduler, dag-processor, triggerer, airflow-init: Airflow and its
#            providers from the lock, this project's DAG and plugins; no torch, no voicebatch library
#   worker   Celery workers: control plus the voicebatch library and its pinned dependencies
#            (torch 2.11 built for CUDA 13: NVIDIA driver >= 580)
#
#   docker build --target control -t voicebatch-control:latest .
#   docker build --target worker  -t voicebatch:latest .
#   docker build --target worker --build-arg TORCH_INDEX_URL=<PyTorch's cu128 wheel index> -t voicebatch:latest .
#   docker build --target worker --build-arg FLASH_ATTN_WHEEL=<flash-attn wheel: torch 2.11, your CUDA, cp311> ...
#   docker build --target worker --build-arg PREFETCH_MODEL=F5TTS_v1_Base ...   # bake the model in
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

FROM ${AIRFLOW_IMAGE} AS control
USER 0
# /models is the model cache volume: setgid group 0 and group-writable, so containers running as
# any AIRFLOW_UID (always group 0) share it; the workers run with umask 0002 (deploy/worker.sh).
RUN install -d -o 50000 -g 0 -m 2775 /opt/voicebatch /models
USER 50000
WORKDIR /opt/voicebatch
# Dependencies first, pinned by the lock: this layer is rebuilt only when the pins change.
COPY --chown=50000:0 pyproject.toml constraints.txt deploy/requirements.py ./
RUN python requirements.py control > /tmp/requirements.txt \
 && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
 && pip check
COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins
# The Params' ranges, defined once in the library (the CLI checks the same): the DAG imports this
# one standard-library file as voicebatch_settings where the library is not installed.
COPY --chown=50000:0 src/voicebatch/settings.py /opt/airflow/plugins/voicebatch_settings.py
COPY --chown=50000:0 deploy ./deploy
ENV PYTHONPATH=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
WORKDIR /opt/airflow

FROM control AS worker
ARG TORCH_INDEX_URL=""
ARG FLASH_ATTN_WHEEL=""
ARG PREFETCH_MODEL=""
WORKDIR /opt/voicebatch
# torch from another CUDA build's index when asked (versions still from the lock: 2.11.0+cu128
# satisfies torch==2.11.0); then the rest of the lock; flash-attn only if it imports here, so a
# wheel built for another torch or CUDA fails the build instead of every task.
# hadolint ignore=DL3013
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
      pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" -c constraints.txt torch torchaudio; \
    fi \
 && python requirements.py worker > /tmp/requirements.txt \
 && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
 && if [ -n "$FLASH_ATTN_WHEEL" ]; then \
      pip install --no-cache-dir --no-deps "$FLASH_ATTN_WHEEL" && python -c "import flash_attn"; \
    fi \
 && pip check
# The project last, without touching the pinned dependencies: a code change rebuilds only this.
COPY --chown=50000:0 README.md ./
COPY --chown=50000:0 src ./src
RUN pip install --no-cache-dir --no-deps . && pip check
COPY --chown=50000:0 include ./include
ENV VOICEBATCH_MODEL_DIR=/models
# Opt-in: fetch and verify the model at build time (else the first task fetches it into /models,
# or from VOICEBATCH_MODELS_URI, where a hub download is then published for the next worker).
RUN if [ -n "$PREFETCH_MODEL" ]; then voicebatch model resolve "$PREFETCH_MODEL"; fi
WORKDIR /opt/airflow
