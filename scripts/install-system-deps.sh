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
