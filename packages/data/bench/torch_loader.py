# PyTorch reference for bench:data: DataLoader + PIL + torchvision transforms over the same JPEGs.
# Prints one JSON object. Run with /usr/bin/python3 (Debian's python3-torch, python3-torchvision).
import json, os, resource, sys, time
import torch
from PIL import Image
from torchvision import transforms

lst, size, workers, epochs, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
root = os.path.dirname(lst)
files = [os.path.join(root, l.split()[1]) for l in open(lst) if l.strip()]
torch.set_num_threads(1)

tf = transforms.Compose([
    transforms.Resize((size, size)),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
])

class Faces(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        return tf(Image.open(files[i]).convert('RGB')), i

loader = torch.utils.data.DataLoader(Faces(), batch_size=batch, shuffle=True, num_workers=workers,
                                     persistent_workers=workers > 0, drop_last=False)
for _ in range(3):  # warm-up, as for ours
    for _ in loader:
        pass
TICK = os.sysconf('SC_CLK_TCK')
def proc_cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime
def cpu():
    # This process plus the loader's (persistent) worker processes.
    a = resource.getrusage(resource.RUSAGE_SELF)
    it = loader._iterator
    pids = [w.pid for w in it._workers] if it is not None and workers > 0 else []
    return a.ru_utime + a.ru_stime + sum(proc_cpu(p) for p in pids)
best = None
for _ in range(epochs):
    c0, t0, n = cpu(), time.perf_counter(), 0
    for x, _i in loader:
        n += x.shape[0]
    secs = time.perf_counter() - t0
    c = cpu() - c0
    if best is None or n / c > best["images"] / best["cpu_s"]:
        best = {"images": n, "seconds": secs, "cpu_s": c}
    best["seconds"] = min(best["seconds"], secs)
print(json.dumps(best))
