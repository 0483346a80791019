# syntax=docker/dockerfile:1
#
# vxnet agent image. Two stages: the build stage has the compilers node-gyp needs for the native
# addon (native/vxnet_io.cc) and TypeScript; the runtime stage has node, iproute2 (the agent runs
# `ip` to address the TUN device and add the cluster route) and the built files, nothing else.
#
#   docker build -t ghcr.io/vxnet/vxnet:0.1.0 .
#
# User: the agent runs as root with CAP_NET_ADMIN as its only capability (deploy/03-daemonset.yaml
# drops ALL and adds NET_ADMIN, with allowPrivilegeEscalation: false). Creating a TUN device and
# changing addresses and routes in the host network namespace need CAP_NET_ADMIN, and so does
# every `ip` the agent runs. A non-root user could only get it through file capabilities
# (setcap cap_net_admin+ep on the node binary and on ip), which (1) grants it to every script any
# process in the image runs with node, and (2) is ignored under no_new_privs, so the pod would need
# allowPrivilegeEscalation: true, a weaker setting than root without the other capabilities.

FROM node:24-bookworm AS build
WORKDIR /src
# Dependencies first, without lifecycle scripts: this layer is reused until the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
# The native addon: node-gyp rebuild (the package's "install" script) -> build/Release/vxnet_io.node
COPY binding.gyp ./
COPY native/ native/
RUN npm run install
# TypeScript -> dist/
COPY tsconfig.json ./
COPY src/ src/
RUN npm run build
RUN npm prune --omit=dev

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/vxnet
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY --from=build /src/build/Release/*.node build/Release/
USER root
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["agent", "--config", "/etc/vxnet/config.json"]
