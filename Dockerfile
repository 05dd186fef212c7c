# syntax=docker/dockerfile:1
# trainflow: the locked dependencies, the project (a git + DVC repository) and a non-root user.
#
#   docker build -t trainflow .                                      # CPU (torch CPU wheel)
#   docker build -t trainflow:cuda --build-arg TORCH_VARIANT=cu128 . # CUDA 12.8 wheel; run with --gpus all
#
#   docker run --rm trainflow                                        # the training_pipeline flow
#   docker run --rm trainflow flow retrain --no-remote               # the retrain flow
#   docker run --rm trainflow stage train                            # dvc repro train
#   docker run --rm trainflow repro                                  # dvc repro
#   docker run --rm trainflow trainflow config show                  # any other command runs as given
#
# Set PREFECT_API_URL to report flow runs to a Prefect server; AWS_* variables for S3 uploads and
# an S3 DVC remote. CUDA wheels carry their own CUDA runtime: the host needs only the NVIDIA driver.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

# cpu, or a CUDA wheel tag of the PyTorch index (cu126, cu128, ...).
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG APP_UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DVC_NO_ANALYTICS=1 \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# git: DVC works in a git repository (dvc.lock history, `dvc metrics diff HEAD`).
# DL3008 (pin apt package versions) is ignored: Debian's security updates replace exact package
# versions, so a pin breaks the build within weeks; the base image tag fixes the release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/venv \
    && groupadd --gid "${APP_UID}" trainflow \
    && useradd --create-home --uid "${APP_UID}" --gid "${APP_UID}" --shell /bin/bash trainflow

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. torch comes from the PyTorch
# index of the chosen variant; the lock's `torch==` pin is then already satisfied by it.
COPY requirements.lock ./
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        "torch==${TORCH_VERSION}" \
    && pip install --no-cache-dir -r requirements.lock

COPY --chown=${APP_UID}:${APP_UID} . .
RUN pip install --no-cache-dir --no-deps /app \
    && rm -rf /app/build /app/src/*.egg-info

USER ${APP_UID}
ENTRYPOINT ["python", "-m", "flows"]
CMD ["flow", "training_pipeline"]
