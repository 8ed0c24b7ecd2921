# The bridge as a container: `docker run ... kong-consul-bridge run`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --system --uid 10001 bridge
USER bridge
EXPOSE 9100
ENTRYPOINT ["kong-bridge"]
CMD ["run", "--listen", "0.0.0.0:9100"]
