# The bridge as a container: `docker run ... kong-consul-bridge run`.
# Runtime image: the bridge and the library only (no emulator dependencies), non-root.
# The base is pinned to an exact tag; pin its digest too where your registry policy wants it.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /build
# Dependencies first, from pyproject.toml alone (a stub package stands in for the source),
# so editing the source or the README does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p src/bridge && touch src/bridge/__init__.py README.md \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes kong-consul-bridge
COPY README.md LICENSE ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps . && rm -rf /build

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/venv /opt/venv
RUN useradd --system --uid 10001 --no-create-home bridge
USER 10001
EXPOSE 9100
# /healthz answers while the daemon runs (`run --listen`); Python, since slim has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9100/healthz', timeout=2)"]
ENTRYPOINT ["kong-bridge"]
CMD ["run", "--listen", "0.0.0.0:9100"]
