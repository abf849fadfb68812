# syntax=docker/dockerfile:1
# coursemart's image: `docker build -t coursemart .` makes the API image (with the PostgreSQL
# driver); `--build-arg EXTRAS=postgres,azure` makes a pipeline image that also reads abfs:// lakes.
# Settings come only from the environment at run time (COURSEMART_*, or COURSEMART_<NAME>_FILE
# for secrets): no lake, warehouse or credential is built in. README.md: "Run with containers".

ARG BASE=python:3.12-slim

# ---- deps: the dependencies in /opt/venv, rebuilt only when pyproject.toml changes -----------
FROM ${BASE} AS deps
ARG EXTRAS=postgres
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN apt-get update && apt-get install --yes --no-install-recommends binutils \
    && python3 -m venv /opt/pip && python3 -m venv --without-pip /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# Installed through an empty package and README (editing either reuses this layer), then trimmed
# of what coursemart never loads (test suites, C headers, pyarrow's Flight and S3 libraries: an
# s3:// lake goes through s3fs), of the symbols of compiled modules, and of byte code, which Python
# compiles in memory when a process starts.
RUN mkdir -p src/coursemart && touch README.md src/coursemart/__init__.py \
    && /opt/pip/bin/pip --python /opt/venv/bin/python install --no-compile ".[${EXTRAS}]" \
    && /opt/pip/bin/pip --python /opt/venv/bin/python uninstall --yes coursemart \
    && cd /opt/venv/lib/python3*/site-packages \
    && find . -depth -type d \( -name tests -o -name include \) -exec rm -rf {} + \
    && rm -rf pyarrow/src pyarrow/*flight* pyarrow/*s3* pyarrow/*.pxd pyarrow/*.pyx pyarrow/*.pxi \
    && find . -name __pycache__ -type d -exec rm -rf {} + \
    && find . -name "*.so*" -type f -not -path "*.libs/*" -exec strip --strip-unneeded {} + \
    && echo /opt/coursemart > coursemart.pth

# ---- build: the coursemart wheel, installed into /opt/coursemart ---------------------------------
FROM deps AS build
COPY README.md ./
COPY src ./src
RUN /opt/pip/bin/pip --python /opt/venv/bin/python install --no-compile --no-deps \
        --target /opt/coursemart . \
    && /opt/venv/bin/python -B -c "import coursemart.api, coursemart.cli, pyarrow.parquet, uvloop"

# ---- runtime: the two folders and a user, nothing else -------------------------------------------
FROM ${BASE}
ENV PATH=/opt/coursemart/bin:/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd --gid 10001 coursemart \
    && useradd --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/coursemart --shell /usr/sbin/nologin coursemart \
    && install -d -o coursemart -g coursemart /var/lib/coursemart /var/lib/coursemart/data
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /opt/coursemart /opt/coursemart
# The Azure Functions entry point, for an image on Azure's Functions base (docs/deploy.md).
COPY function_app.py host.json /opt/functions/
# The default lake (./data/lake) and SQLite warehouse (./data/warehouse.db) land in this folder.
WORKDIR /var/lib/coursemart
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
ENTRYPOINT ["coursemart"]
CMD ["serve", "--host", "0.0.0.0"]
