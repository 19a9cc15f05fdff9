"""PyTorch gloo all-reduce on loopback: the baseline for bench/allreduce.ts.

Run with Debian's interpreter: /usr/bin/python3 gloo_allreduce.py --nproc 2 --sizes 4096,16384 --out f.jsonl
Across nodes (one run per node, e.g. in each network namespace): add --nnodes 2 --node-rank I
--master-addr A --master-port P --ifname DEV; ranks are node_rank·nproc + local rank.
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


def worker(local_rank, args, port):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", args.ifname)
    torch.set_num_threads(1)
    world = args.nnodes * args.nproc
    rank = args.node_rank * args.nproc + local_rank
    dist.init_process_group("gloo", init_method=f"tcp://{args.master_addr}:{port}", rank=rank, world_size=world)
    rows = []
    for nbytes in args.sizes:
        buf = torch.rand(nbytes // 4, dtype=torch.float32)
        n = iters_for(nbytes)
        for _ in range(2):
            dist.all_reduce(buf)
            buf.div_(world)
        times = []
        for _ in range(n):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            times.append(time.perf_counter() - t0)
            buf.div_(world)
        t = torch.tensor(times, dtype=torch.float64)
        gathered = [torch.zeros_like(t) for _ in range(world)]
        dist.all_gather(gathered, t)
        slowest = torch.stack(gathered).max(dim=0).values.tolist()
        med = statistics.median(slowest)
        algbw = nbytes / med / 1e9
        rows.append({
            "impl": "gloo", "nproc": world, "bytes": nbytes, "wire": "f32",
            "median_s": med, "min_s": min(slowest), "max_s": max(slowest),
            "algbw_gbps": algbw, "busbw_gbps": algbw * 2 * (world - 1) / world,
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
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=0)
    p.add_argument("--ifname", default="lo")
    args = p.parse_args()
    port = args.master_port
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    mp.spawn(worker, args=(args, port), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
