# Airflow 3.3.2 (official image) with Sentinela installed. Used by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11
USER root
COPY --chown=airflow:root . /opt/sentinela
USER airflow
WORKDIR /opt/sentinela
# torch is pinned to the CPU build; the index URL keeps pip from pulling a CUDA build.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements.txt \
 && pip install --no-cache-dir --no-deps -e . \
 && HF_HUB_OFFLINE=1 python models/train.py
ENV SENTINELA_SOURCES=/opt/sentinela/sources.yaml \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
