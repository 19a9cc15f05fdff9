#!/usr/bin/env bash
# Rehearses scripts/gpu-check.sh on a machine without a GPU: copies the packed payload
# (out/gpu-check/, from scripts/gpu-check-pack.mjs) into a fresh directory outside the tree and runs
# it there with an environment of its own: PATH without any directory that holds node or npm, no
# NODE_* variables, HOME in the temp dir. WebGPU runs on whatever Vulkan driver is here (lavapipe),
# through the payload's Vulkan loader, PyTorch on the CPU, at a reduced size (override with the MTL_GPU_CHECK_* knobs).
#   scripts/gpu-check/rehearse.sh [payload dir]
set -eu
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PAYLOAD="$(cd "${1:-$REPO/out/gpu-check}" && pwd)"
ROOT="$(mktemp -d "${TMPDIR:-/tmp}/mtl-gpu-check-rehearsal.XXXXXX")"
cp -r "$PAYLOAD" "$ROOT/payload"
mkdir -p "$ROOT/home" "$ROOT/out"
# Debian's /usr/bin (and /bin, the same directory) holds node next to the tools the check needs:
# those directories are replaced by one of links to everything in them except node/npm/npx/corepack.
mkdir -p "$ROOT/bin"
CLEAN_PATH="$ROOT/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -n "$d" ] && [ -d "$d" ] || continue
  if [ -e "$d/node" ] || [ -e "$d/npm" ] || [ -e "$d/npx" ]; then
    for f in "$d"/*; do
      case "$(basename "$f")" in node | nodejs | npm | npx | corepack) continue ;; esac
      [ -e "$ROOT/bin/$(basename "$f")" ] || ln -s "$f" "$ROOT/bin/$(basename "$f")"
    done
  else
    CLEAN_PATH="$CLEAN_PATH:$d"
  fi
done
PY="${MTL_GPU_CHECK_PYTHON:-/usr/bin/python3}" # Debian's, with torch (pyenv's python3 has none)
echo "rehearsal in $ROOT; PATH=$CLEAN_PATH"
env -i HOME="$ROOT/home" PATH="$CLEAN_PATH" TMPDIR="$ROOT" OUT="$ROOT/out" \
  MTL_GPU_CHECK_PYTHON="$PY" \
  MTL_GPU_CHECK_TORCH_DEVICE="${MTL_GPU_CHECK_TORCH_DEVICE:-cpu}" \
  MTL_GPU_CHECK_ARCH="${MTL_GPU_CHECK_ARCH:-ir50}" \
  MTL_GPU_CHECK_SIZE="${MTL_GPU_CHECK_SIZE:-32}" \
  MTL_GPU_CHECK_BATCH="${MTL_GPU_CHECK_BATCH:-2}" \
  MTL_GPU_CHECK_SECONDS="${MTL_GPU_CHECK_SECONDS:-1}" \
  MTL_GPU_CHECK_WORKDIR="$ROOT/work" \
  MTL_GPU_CHECK_VULKAN_LOADER="${MTL_GPU_CHECK_VULKAN_LOADER:-payload}" \
  ${MTL_GPU_CHECK_TIMEOUT_WEBGPU:+MTL_GPU_CHECK_TIMEOUT_WEBGPU=$MTL_GPU_CHECK_TIMEOUT_WEBGPU} \
  bash -c 'if command -v node >/dev/null; then echo "rehearsal: node is still on PATH" >&2; exit 3; fi
           exec bash "$0"' "$ROOT/payload/gpu-check.sh"
