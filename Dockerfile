# voicebatch on the official Airflow image: the project, its pinned dependencies (the same
# pins as the Makefile: pyproject.toml + constraints.txt), optional flash-attn, no model
# download at build time unless asked.
#
#   docker build -t voicebatch:latest .
#   docker build --build-arg FLASH_ATTN_WHEEL=<url or path of a wheel matching torch 2.11, CUDA 13, cp311> .
#   docker build --build-arg PREFETCH_MODEL=F5TTS_v1_Base .      # bake the model into the image
FROM apache/airflow:3.3.2-python3.11

ARG FLASH_ATTN_WHEEL=""
ARG PREFETCH_MODEL=""

USER root
# libsndfile comes inside the soundfile wheel; nothing else is needed from the system.
RUN mkdir -p /opt/voicebatch /models && chown -R airflow:0 /opt/voicebatch /models
USER airflow

WORKDIR /opt/voicebatch
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:0 src ./src
# The same pinned set as `make install` (without the test tools), Airflow's own pins kept.
RUN pip install --no-cache-dir -c constraints.txt -e ".[airflow,celery]" \
 && if [ -n "$FLASH_ATTN_WHEEL" ]; then pip install --no-cache-dir --no-deps "$FLASH_ATTN_WHEEL"; fi

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/voicebatch/include
COPY --chown=airflow:0 deploy /opt/voicebatch/deploy

ENV VOICEBATCH_MODEL_DIR=/models \
    PYTHONPATH=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
VOLUME ["/models"]

# Opt-in: download and verify the model at build time (otherwise the model store fetches it
# on first use into the /models volume, or from VOICEBATCH_MODELS_URI).
RUN if [ -n "$PREFETCH_MODEL" ]; then voicebatch model resolve "$PREFETCH_MODEL"; fi
WORKDIR /opt/airflow
