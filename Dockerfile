# syntax=docker/dockerfile:1
#
# vxnet agent image, on Node.js 24. Two stages: the build stage has the compilers node-gyp needs
# for the native addon (native/vxnet_io.cc) and TypeScript; the runtime stage has node, the
# programs the agent and its init container run, and the built files, nothing else.
# docs/kubernetes.md ("Build and push the image") has the build commands, multi-arch included:
# the addon is compiled here, so every architecture builds natively or under emulation.
#
# Node: both stages use the image's own node. The project's `node` dev dependency (Node 24 for
# machines whose own node is older) is never fetched and never shipped.
#
# User: the agent runs as root with CAP_NET_ADMIN as its only capability (deploy/03-daemonset.yaml
# drops ALL and adds NET_ADMIN, with allowPrivilegeEscalation: false). Creating a TUN device and
# changing addresses and routes in the host network namespace (over netlink) need CAP_NET_ADMIN,
# and so does every `nft` the agent runs. A non-root user could only get it through file capabilities
# (setcap cap_net_admin+ep on the node binary and on ip), which (1) grants it to every script any
# process in the image runs with node, and (2) is ignored under no_new_privs, so the pod would need
# allowPrivilegeEscalation: true, a weaker setting than root without the other capabilities.

FROM node:24-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused until the lockfile changes. No lifecycle scripts run,
# so the `node` dev dependency never downloads its binary; its empty package is removed, so
# nothing named node shadows the image's /usr/local/bin/node on npm's PATH.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && rm -rf node_modules/node node_modules/.bin/node
# The native addon: the package's "install" script (node-gyp rebuild) -> build/Release/vxnet_io.node,
# compiled against the headers of the image's node (nodedir) instead of downloaded ones.
COPY binding.gyp ./
COPY native/ native/
RUN npm_config_nodedir=/usr/local npm run install
# TypeScript -> dist/
COPY tsconfig.json ./
COPY src/ src/
RUN npm run build
RUN npm prune --omit=dev

FROM node:24-bookworm-slim
# iproute2: `ip`, with which the agent reads the underlay interface and its MTU (it sets up its
#   TUN device over netlink itself), and which an operator wants in `kubectl exec`.
# nftables: `nft`, with which the agent installs its masquerade rules.
# containernetworking-plugins: Debian's CNI plugins, which `vxnet install-cni` (the init
#   container) copies to the node's /opt/cni/bin when the node has none. Only the ones the
#   conflist names and loopback (which the container runtime needs for every pod) are kept;
#   the package's other plugins are removed from the image (its dependency on iptables stays:
#   portmap runs iptables on the node, not in this image, but dpkg insists).
# The base image's package managers (npm, corepack, yarn) go too: nothing at run time installs
# anything, and they are the largest part of the base image that the agent never runs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables containernetworking-plugins \
 && find /usr/lib/cni -type f ! -name bridge ! -name host-local ! -name portmap ! -name loopback -delete \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /opt/vxnet
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY --from=build /src/build/Release/*.node build/Release/
USER root
# The flags are AGENT_NODE_FLAGS (src/agent/node-flags.ts): memory, not speed.
ENTRYPOINT ["node", "--v8-pool-size=1", "--max-semi-space-size=1", "--no-maglev", "dist/src/cli/main.js"]
CMD ["agent", "--config", "/etc/vxnet/config.json"]
