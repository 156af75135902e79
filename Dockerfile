# syntax=docker/dockerfile:1
# The reference gateway. Build: docker build -t redwing/gateway .   Run: docker compose up

FROM node:20-slim AS build
WORKDIR /app
# `npm install`, not `npm ci`: a lockfile written on one platform lacks other platforms' optional
# binaries, which `npm ci` refuses. npm install honours the lockfile.
COPY . .
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-fund --no-audit \
 && npm run build \
 && npm prune --omit=dev --no-fund --no-audit

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# node_modules/@redwing/* are workspace links into libs/: keep their targets so `@redwing/<lib>` resolves
# whether the build compiled the libs into dist/ or left the imports pointing at the packages.
COPY --from=build /app/libs ./libs
USER node
EXPOSE 3000
# Liveness: 200 while the process serves, whatever the state of Redis.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node as PID 1 gets SIGTERM from `docker stop`; the gateway's shutdown hooks close HTTP and Redis cleanly.
CMD ["node", "--max-semi-space-size=32", "dist/apps/gateway/apps/gateway/src/main"]
