"""PyTorch gloo all-reduce on loopback: the baseline for bench/allreduce.ts.

Run with Debian's interpreter: /usr/bin/python3 gloo_allreduce.py --nproc 2 --sizes 4096,16384 --out f.jsonl
Each rank times every iteration (barrier before each); rank 0 writes one JSON
object per size with min/median/max over iterations of the slowest rank.
"""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def iters_for(nbytes):
    return max(5, min(500, (512 << 20) // nbytes))


def worker(rank, args, port):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.nproc)
    rows = []
    for nbytes in args.sizes:
        buf = torch.rand(nbytes // 4, dtype=torch.float32)
        n = iters_for(nbytes)
        for _ in range(2):
            dist.all_reduce(buf)
            buf.div_(args.nproc)
        times = []
        for _ in range(n):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            times.append(time.perf_counter() - t0)
            buf.div_(args.nproc)
        t = torch.tensor(times, dtype=torch.float64)
        gathered = [torch.zeros_like(t) for _ in range(args.nproc)]
        dist.all_gather(gathered, t)
        slowest = torch.stack(gathered).max(dim=0).values.tolist()
        med = statistics.median(slowest)
        algbw = nbytes / med / 1e9
        rows.append({
            "impl": "gloo", "nproc": args.nproc, "bytes": nbytes, "wire": "f32",
            "median_s": med, "min_s": min(slowest), "max_s": max(slowest),
            "algbw_gbps": algbw, "busbw_gbps": algbw * 2 * (args.nproc - 1) / args.nproc,
        })
    if rank == 0:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(args, port), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
