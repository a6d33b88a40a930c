# Build stage: every dependency, because generating the Prisma client and the
# Pothos types (scripts/generate.mjs, run by npm ci's postinstall) needs the
# prisma CLI, a dev dependency. It reads prisma/schema.prisma and
# prisma.config.ts and writes src/generated/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund

# Runtime stage: production dependencies only (tsx among them: the server runs
# from its TypeScript sources) and the generated code from the build stage.
FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=4000 PARLEY_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the root one is the generation already done above.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY prisma ./prisma
COPY src ./src
COPY --from=build /app/src/generated ./src/generated
# Without DATABASE_URL the image runs the embedded database (and keeps its
# generated JWT secret) in /data, the one place the unprivileged user writes.
RUN mkdir /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 4000
# Liveness only: /health answers while the process serves HTTP, whatever the
# database or Redis are doing (/ready is for load balancers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and receives `docker stop`'s SIGTERM itself (no npm, no shell):
# src/server.ts handles it with a graceful stop bounded by SHUTDOWN_GRACE_MS
# plus a few seconds, so give the container more than that before SIGKILL
# (docker stop -t 20, stop_grace_period in docker-compose.yml). Migrations run
# at start; an advisory lock serializes concurrent processes.
CMD ["node", "--import", "tsx", "src/server.ts"]
