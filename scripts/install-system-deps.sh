#!/usr/bin/env bash
# System packages the test suite and the benchmarks use (Debian/Ubuntu, as root):
#   libdnnl-dev, libopenblas-dev  oneDNN + BLAS for the `native` CPU backend addon (built by npm ci)
#   prometheus                    promtool and a real Prometheus server for the observability tests
#   docker-compose                `docker-compose config` validates the Compose files
#   iproute2                      network namespaces for the two-host tests
#   slurmctld, slurmd,            a real two-node Slurm cluster for test/slurm-cluster.test.ts
#   slurm-client, munge           (the test runs its own daemons, config and key; not the packages' services)
#   python3-torch(+vision)        PyTorch reference rows in benchmarks and real torch.save checkpoints in tests
#   g++, make, python3            node-gyp (the oneDNN addon and the collective's native kernels)
#   libvulkan1,                   the Vulkan loader and lavapipe (Mesa's CPU Vulkan driver), so that the
#   mesa-vulkan-drivers           `webgpu` backend (Dawn) has an adapter to be tested on; on Debian 12 from
#                                 bookworm-backports (25.x), as bookworm's own Mesa (22.3) is too old for Dawn
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps.sh: run as root (sudo) to apt-get install the system packages" >&2
  exit 1
fi
pkgs=(libdnnl-dev libopenblas-dev prometheus docker-compose iproute2 slurmctld slurmd slurm-client munge python3-torch python3-torchvision g++ make python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

vk=(libvulkan1 mesa-vulkan-drivers)
mesa=$(dpkg-query -W -f='${Status} ${Version}' mesa-vulkan-drivers 2>/dev/null || true)
if ! dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'install ok installed' ||
  ! [[ $mesa =~ ^install\ ok\ installed\ ([0-9]+) ]] || [ "${BASH_REMATCH[1]}" -lt 24 ]; then
  export DEBIAN_FRONTEND=noninteractive
  target=()
  if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    target=(-t bookworm-backports)
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${target[@]}" "${vk[@]}"
fi
