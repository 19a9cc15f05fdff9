"""PyTorch side of `npm run bench:train`: the same training step as the scenario beside it (AIFR, FAS or
joint), written with the parity reference's networks, losses and optimizers
(test/fixtures/release_steps.py: backbone, CosFace, age estimator, CDA through the GRL, weight decay as the
recipe applies it, SGD with momentum; generator, discriminator, LSGAN + identity + age losses, Adam).

Run by Debian's python3 (torch 1.13), one process per worker:
  /usr/bin/python3 torch_train_step.py CONFIG.json RANK --iters N --threads T [--dist-file PATH]
CONFIG.json is release_steps.py's config (parity-harness.ts `referenceConfig`) plus `batch` (per worker)
and `dropout`. At world size > 1 the networks are wrapped in DistributedDataParallel over gloo, as the
release runs them. Batches are random (fixed before timing). Prints one JSON line:
{rank, threads, batch, iters, step_ms, fr_ms, fas_ms, peak_rss_mb} (means over the timed steps, after one
warm-up step).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'test', 'fixtures'))
import release_steps as rs  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument('config')
    p.add_argument('rank', type=int)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--threads', type=int, required=True)
    p.add_argument('--dist-file')
    a = p.parse_args()
    cfg = json.load(open(a.config))
    ws, n, size, groups = cfg['world_size'], cfg['batch'], cfg['size'], cfg['groups']
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.rank)
    nets = rs.build(cfg)
    nets['backbone'].output_layer[1].p = cfg['dropout']
    if ws > 1:
        dist.init_process_group('gloo', init_method='file://' + a.dist_file, rank=a.rank, world_size=ws)
        run = {k: nn.parallel.DistributedDataParallel(v) for k, v in nets.items()}
    else:
        run = dict(nets)
    opt = rs.optimizers(cfg, nets)
    x = torch.rand(n, 3, size, size) * 2 - 1
    real = torch.rand(n, 3, size, size) * 2 - 1
    labels = torch.randint(0, cfg['classes'], (n,))
    ages = torch.randint(0, 90, (n,)).float()
    targets = torch.randint(0, groups, (n,))
    fr_ms = fas_ms = 0.0
    for it in range(1 + a.iters):
        t0 = time.perf_counter()
        if cfg['mode'] != 'fas':
            rs.fr_step(cfg, nets, run, opt, x, labels, ages)
        t1 = time.perf_counter()
        if cfg['mode'] != 'aifr':
            rs.fas_step(cfg, nets, run, opt, x, real, targets)
        t2 = time.perf_counter()
        if it > 0:
            fr_ms += (t1 - t0) * 1000
            fas_ms += (t2 - t1) * 1000
    if ws > 1:
        dist.destroy_process_group()
    print(json.dumps({
        'rank': a.rank, 'threads': torch.get_num_threads(), 'batch': n, 'iters': a.iters,
        'step_ms': (fr_ms + fas_ms) / a.iters, 'fr_ms': fr_ms / a.iters, 'fas_ms': fas_ms / a.iters,
        'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == '__main__':
    main()
