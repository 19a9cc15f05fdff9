"""PyTorch reference for `npm run bench:backend`: the same AIResNet training step.

Run by Debian's python3 (torch 1.13): /usr/bin/python3 torch_step.py --arch ir-tiny --size 64 --batch 8
Prints one JSON line like bench/step.ts. The architecture follows docs/mtlface-model.md
section 2 (input layer, bottleneck_IR stages, fsm attention with SPP, output layer);
the loss is the same linear classifier + softmax cross-entropy on the embedding.
"""
import argparse
import json
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

UNITS = {"ir-tiny": [1, 1, 1, 1], "demo": [1, 1, 1, 1], "ir34": [3, 4, 6, 3], "ir50": [3, 4, 14, 3]}
WIDTHS = {"demo": [16, 32, 64, 128]}


class BottleneckIR(nn.Module):
    def __init__(self, cin, depth, stride):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, depth, 3, 1, 1, bias=False),
            nn.BatchNorm2d(depth),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        )

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


def spp(x, mode):
    pool = F.adaptive_avg_pool2d if mode == "avg" else F.adaptive_max_pool2d
    return torch.cat([pool(x, n).flatten(1) for n in (1, 2, 3)], 1)


class AttentionModule(nn.Module):
    def __init__(self, c, reduction=16):
        super().__init__()
        pooled = c * 14
        self.channel = nn.Sequential(
            nn.Conv2d(pooled, pooled // reduction, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(pooled // reduction, c, 1, bias=False),
            nn.BatchNorm2d(c, momentum=0.01),
            nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, 1, 3, bias=False), nn.BatchNorm2d(1, momentum=0.01), nn.Sigmoid())

    def forward(self, x):
        pooled = (spp(x, "avg") + spp(x, "max"))[:, :, None, None]
        channel_scale = self.channel(pooled)
        spatial_scale = self.spatial(torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1))
        x_age = 0.5 * (x * channel_scale + x * spatial_scale)
        return x - x_age, x_age


class Backbone(nn.Module):
    def __init__(self, units, widths, size):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        blocks, cin = [], widths[0]
        for n, w in zip(units, widths):
            blocks.append(nn.Sequential(*[BottleneckIR(cin if i == 0 else w, w, 2 if i == 0 else 1) for i in range(n)]))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fsm = AttentionModule(widths[3])
        side = size
        for _ in range(4):
            side = (side + 1) // 2
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(widths[3]), nn.Dropout(0.5), nn.Flatten(), nn.Linear(widths[3] * side * side, 512), nn.BatchNorm1d(512)
        )

    def forward(self, x):
        x_id, _ = self.fsm(self.blocks(self.input_layer(x)))
        return self.output_layer(x_id)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="ir-tiny")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--min-seconds", type=float, default=8)
    p.add_argument("--min-steps", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Backbone(UNITS[a.arch], WIDTHS.get(a.arch, [64, 128, 256, 512]), a.size).train()
    head = nn.Linear(512, 64, bias=False)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=1e-3)
    images = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    labels = torch.arange(a.batch) % 64

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(model(images)), labels)
        loss.backward()
        opt.step()
        loss.item()

    step()
    steps, t0 = 0, time.perf_counter()
    while steps < a.min_steps or time.perf_counter() - t0 < a.min_seconds:
        step()
        steps += 1
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "backend": "pytorch", "model": a.arch, "size": a.size, "batch": a.batch,
        "images_per_s": round(steps * a.batch / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "steps": steps, "step_s": round(seconds / steps, 3),
    }))


if __name__ == "__main__":
    main()
