# The phigate server image:  docker build -t phigate:0.1.0 .
# The build stage compiles the TypeScript (npm ci runs `prepare`, which builds dist/); the runtime
# stage has production dependencies and dist/ only, runs as an unprivileged user, and keeps its
# evidence and state in /var/lib/phigate (mount a persistent volume there: one per replica).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts scripts
COPY src src
COPY test/support test/support
RUN npm ci --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/phigate
COPY package.json package-lock.json ./
COPY scripts/prepare.mjs scripts/prepare.mjs
COPY --from=build /src/dist dist
# prepare finds no compiler here and keeps the dist/ copied above.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin bin
COPY completions completions
RUN groupadd --system --gid 10001 phigate \
 && useradd --system --uid 10001 --gid phigate --home-dir /var/lib/phigate --shell /usr/sbin/nologin phigate \
 && mkdir -p /var/lib/phigate /etc/phigate \
 && chown phigate:phigate /var/lib/phigate
USER 10001:10001
VOLUME ["/var/lib/phigate"]
EXPOSE 7432
ENTRYPOINT ["node", "/opt/phigate/bin/phigate.js"]
CMD ["server", "--config", "/etc/phigate/phigate.yaml", "--listen", "0.0.0.0:7432", "--data-dir", "/var/lib/phigate"]
