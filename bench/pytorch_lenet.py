"""PyTorch's figures for the same work `mlfw bench` measures (run on the same machine).

    python3 -m venv v && v/bin/pip install torch && v/bin/python bench/pytorch_lenet.py [--compile] [BATCH...]

With --compile the training step (forward, loss, backward, optimizer) runs under
`torch.compile` (Inductor on the CPU); its compile time is printed too.

LeNet-5 as in tests/fixtures/README.md; cross-entropy; SGD momentum 0.9; random inputs;
median of 30 steps after 5 warm-up steps; 2 threads.
"""
import os, statistics, sys, time, resource
import torch, torch.nn as nn, torch.nn.functional as F

# Threads: 2, or BENCH_THREADS (for the thread-scaling table in BENCHMARKS.md).
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

def median_time(fn, warmup=5, steps=30):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

COMPILE = "--compile" in sys.argv
for b in [int(a) for a in sys.argv[1:] if a != "--compile"] or [64, 256]:
    torch.manual_seed(0)
    m = LeNet5()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(b, 1, 28, 28)
    y = torch.randint(0, 10, (b,))
    def step():
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    mode = "eager"
    if COMPILE:
        step = torch.compile(step)
        t0 = time.perf_counter(); step(); step()
        mode = f"torch.compile (first two steps {time.perf_counter() - t0:.1f} s)"
    t = median_time(step)
    with torch.no_grad():
        ti = median_time(lambda: m(x))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__} {mode} batch {b}: train {b / t:,.0f} img/s, infer {b / ti:,.0f} img/s, peak RSS {rss:.0f} MB")
