# syntax=docker/dockerfile:1
#
# One image for every invoiceflow function. Each Knative Service picks its function with
# FUNCTION_SOURCE (/app/functions/<step>.py) and FUNCTION_TARGET (<step>), and sets THREADS to
# its containerConcurrency (knative/40-services.yaml). The same image runs the database
# migrations (`invoiceflow db migrate`, knative/30-migrate-job.yaml).
#
#   docker build -t registry.example.com/invoiceflow:0.1.0 .
#
# The dependencies come from requirements.lock as wheels only (--only-binary), so no compiler is
# needed anywhere, and the final stage holds a venv without pip, a non-root user, and nothing else
# of the build. The local runtime (local/: invoiceflow dev and demo, with pika) is development
# tooling and is not in the image.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A venv without pip: the base image's pip installs into it through --python.
RUN python -m venv --without-pip /opt/venv
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY requirements.lock /tmp/requirements.lock
RUN python -m pip --python /opt/venv/bin/python install --only-binary=:all: --no-deps \
        -r /tmp/requirements.lock
# Then the package itself (code, SQL migrations and package data), without its dependencies.
COPY pyproject.toml README.md /src/
COPY functions/invoiceflow/ /src/functions/invoiceflow/
# The package's invoice schema is a link to the published one; the wheel takes the file.
COPY events/schemas/ /src/events/schemas/
# Bytecode, the compiled __init__ of the package's records (__pycache__/*.records), the
# parsed metrics of the shipped fonts (render/fonts/__fontcache__) and the part of Babel's
# data the documents read, for every locale of their languages (render/__babeldata__, ~10 MB),
# made once here: the image is read-only at run time, and each pod's start and first render
# read them (-P: the venv's package, whatever the working directory holds).
RUN python -m pip --python /opt/venv/bin/python install --no-deps /src \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/python -P -m invoiceflow.records \
    && /opt/venv/bin/python -P -m invoiceflow.render.fontcache \
    && /opt/venv/bin/python -P -m invoiceflow.render.babeldata > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="invoiceflow" \
      org.opencontainers.image.description="Invoice generator functions (functions-framework)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/var/lib/invoiceflow \
    PORT=8080
# The base image's pip and setuptools are not needed at run time.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 invoiceflow \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/invoiceflow \
        --create-home --shell /usr/sbin/nologin invoiceflow
COPY --from=build /opt/venv /opt/venv
# The ~20-line entry points; the package they import is already in the venv.
COPY functions/*.py /app/functions/
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# FUNCTION_TARGET, FUNCTION_SOURCE and THREADS come from the Knative Service; PORT from Knative.
CMD ["functions-framework"]
