"""PyTorch side of scripts/gpu-check.sh: the training step of packages/model/bench/torch_step.py
(the same AIResNet, linear classifier + softmax cross-entropy, SGD) on a chosen device, with the
peak device memory. Prints one JSON line.

    python3 torch_step_device.py --device cuda --arch ir50 --size 112 --batch 64 --min-seconds 20
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

# The network definition is torch_step.py's (bench:backend's PyTorch reference), not a copy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "model", "bench"))
from torch_step import UNITS, WIDTHS, Backbone  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", default="ir50")
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--min-seconds", type=float, default=20)
    p.add_argument("--min-steps", type=int, default=3)
    a = p.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"torch_step_device: --device {a.device} but torch {torch.__version__} sees no CUDA device")
    torch.manual_seed(1)
    model = Backbone(UNITS[a.arch], WIDTHS.get(a.arch, [64, 128, 256, 512]), a.size).train().to(dev)
    head = torch.nn.Linear(512, 64, bias=False).to(dev)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=1e-3)
    images = (torch.rand(a.batch, 3, a.size, a.size) * 2 - 1).to(dev)
    labels = (torch.arange(a.batch) % 64).to(dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(model(images)), labels)
        loss.backward()
        opt.step()
        loss.item()  # waits for the device, as the WebGPU step's read-back of the loss does

    step()  # warm-up: cuDNN algorithm choice, allocator growth
    if dev.type == "cuda":
        torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while steps < a.min_steps or time.perf_counter() - t0 < a.min_seconds:
        step()
        steps += 1
    seconds = time.perf_counter() - t0
    out = {
        "backend": "pytorch",
        "torch": torch.__version__,
        "device": str(dev),
        "model": a.arch,
        "size": a.size,
        "batch": a.batch,
        "images_per_s": round(steps * a.batch / seconds, 3),
        "steps": steps,
        "step_s": round(seconds / steps, 4),
    }
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
        out["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        out["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        out["max_memory_reserved_mib"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    else:
        out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
