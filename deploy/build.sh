#!/bin/sh
# The build steps of the container image (Dockerfile), kept here so CI runs exactly these without a container
# runtime (.ci/run, "image build steps"). Run from the application folder: installs the npm packages into
# node_modules and caches every module the server and the operator tasks load, so the container starts without
# the network. DENO_DIR says where the cache goes (the Dockerfile sets it inside /app).
set -eu
deno install --frozen
deno cache main.ts tasks/migrate.ts tasks/ingest.ts tasks/user.ts tasks/search.ts tasks/export.ts \
  deploy/healthcheck.ts
# What a running server never reads: left out of the image (tests and benchmarks, and the packages only they
# and `deno task db:generate` use: Playwright, axe, drizzle-kit with its esbuild builds, the Parquet writer).
rm -rf tests bench docs .ci
for package in playwright-core axe-core drizzle-kit hyparquet-writer esbuild @esbuild @esbuild-kit @types; do
  rm -rf "node_modules/$package" node_modules/.deno/"$(echo "$package" | tr / +)"[@+]*
done
