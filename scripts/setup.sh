#!/bin/sh
# Installs everything layerfs and its tests need on a fresh Debian machine, then builds:
#   - Debian packages: fuse3 (mount.fuse3, fusermount3), attr (getfattr/setfattr), tree, git,
#     and the peers the tests and benchmarks compare against (fuse-overlayfs, unionfs-fuse,
#     umoci, skopeo), xfsprogs (a reflink copy-up test on a loop-mounted xfs), the container
#     engines and servers the integration tests start themselves (podman + runc + uidmap +
#     slirp4netns, docker.io 20.10, containerd 1.6, docker-registry 2.8 with apache2-utils for
#     htpasswd, openssl for test certificates, busybox-static for a base image without a
#     registry), plus the C toolchain node-gyp needs;
#   - npm ci: dependencies, the native addon (node-gyp) and the TypeScript build;
#   - as root, a /usr/local/bin/layerfs link so `layerfs` and `mount -t fuse.layerfs` work.
# Run as root for the packages; as a normal user it only runs npm ci (and says what is missing).
set -eu
cd "$(dirname "$0")/.."

PKGS="fuse3 attr acl tree git python3 make g++ fuse-overlayfs unionfs-fuse umoci skopeo util-linux zstd tar xfsprogs
  podman runc uidmap slirp4netns docker.io containerd docker-registry apache2-utils openssl busybox-static"

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: not root; these Debian packages are missing (mount tests need them):$missing" >&2
  fi
fi

# Kernel pieces the mount tests use (no-ops when built in or already loaded).
if [ "$(id -u)" = 0 ]; then
  modprobe fuse 2>/dev/null || true
  modprobe overlay 2>/dev/null || true
fi

npm ci --no-audit --no-fund

# Put `layerfs` on PATH, where mount(8) and mount.fuse3 find it for `mount -t fuse.layerfs`.
if [ "$(id -u)" = 0 ] && [ -d /usr/local/bin ]; then
  ln -sfn "$(pwd)/bin/layerfs" /usr/local/bin/layerfs
  echo "setup: /usr/local/bin/layerfs -> $(pwd)/bin/layerfs"
fi
