# Rounds: a small, non-root image with the server and the operator tasks, cached so it starts offline.
# docker compose up (compose.yaml) runs it beside Postgres with pgvector; see docs/self-host.md.
ARG DENO_VERSION=2.9.6

FROM denoland/deno:${DENO_VERSION} AS build
WORKDIR /app
ENV DENO_DIR=/app/.deno
COPY . .
RUN sh deploy/build.sh

FROM denoland/deno:${DENO_VERSION}
WORKDIR /app
ENV DENO_DIR=/app/.deno \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    LOG_FORMAT=json
COPY --from=build --chown=deno:deno /app /app
RUN mkdir -p /data && chown deno:deno /data
USER deno
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["deno", "run", "--cached-only", "--allow-net=127.0.0.1", "--allow-env=PORT", "deploy/healthcheck.ts"]
# `deno task start`'s command (tests/self_host_test.ts keeps them the same), with --cached-only: `deno task`
# would reinstall the npm packages the build left out. Migrations: `deno task migrate`'s, the same way
# (compose.yaml's migrate service).
CMD ["deno", "run", "--cached-only", "--v8-flags=--heap-growing-percent=20,--min-semi-space-size=4,--max-semi-space-size=8", "--unstable-no-legacy-abort", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys", "main.ts"]
