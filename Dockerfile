# One image, two roles (see docs/kubernetes.md):
#   code location  dagster api grpc -m finops_pipeline.definitions -a defs -h 0.0.0.0 -p 4000  (default)
#   admin API      finops serve --host 0.0.0.0 --port 7007
# The official Dagster chart also runs the webserver and the daemon from it
# (deploy/helm/values.yaml), so every Dagster process has the same versions.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

RUN groupadd --system --gid 10001 finops \
 && useradd --system --uid 10001 --gid finops --home-dir /home/finops --create-home --shell /usr/sbin/nologin finops \
 && mkdir -p "$DAGSTER_HOME" \
 && chown finops:finops "$DAGSTER_HOME"

# The dependencies first, from the lock (exact versions, hashes checked: the ones the tests
# ran), in a layer of their own that a code change does not rebuild; then the project
# itself without dependencies, into site-packages, and the sources are removed: the
# processes import the installed packages only. pip check: the lock satisfies pyproject.toml.
COPY requirements/image.txt /tmp/requirements/image.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements/image.txt && rm -rf /tmp/requirements
COPY pyproject.toml README.md /tmp/src/
COPY finops_pipeline /tmp/src/finops_pipeline
COPY finops_admin_plugin /tmp/src/finops_admin_plugin
COPY finops_cli /tmp/src/finops_cli
RUN pip install --no-deps /tmp/src && pip check && rm -rf /tmp/src

WORKDIR /home/finops
USER 10001:10001
EXPOSE 4000 7007

CMD ["dagster", "api", "grpc", "-m", "finops_pipeline.definitions", "-a", "defs", "-h", "0.0.0.0", "-p", "4000"]
