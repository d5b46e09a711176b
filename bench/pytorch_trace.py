"""PyTorch's figures for what `cargo run --release -p mlfw-vision --example bench_trace -- B` measures:
capturing LeNet-5's training step (forward, cross-entropy, backward) as a graph with
`torch.fx.experimental.proxy_tensor.make_fx` (the tracer under torch.compile/AOTAutograd), and
what running the captured FX graph adds over eager execution.

    python3 -m venv v && v/bin/pip install torch && v/bin/python bench/pytorch_trace.py [BATCH...]
"""
import statistics, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

torch.set_num_threads(2)

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

def median_ms(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3

for b in [int(a) for a in sys.argv[1:]] or [64, 1]:
    torch.manual_seed(0)
    m = LeNet5()
    params = list(m.parameters())
    x, t = torch.randn(b, 1, 28, 28), torch.randint(0, 10, (b,))

    def step(x, t):
        loss = F.cross_entropy(m(x), t)
        return [loss, *torch.autograd.grad(loss, params)]

    for _ in range(10):
        step(x, t)
    capture = median_ms(lambda: make_fx(step)(x, t), 21)
    g = make_fx(step)(x, t)
    nodes = len(g.graph.nodes)
    for _ in range(10):
        g(x, t)
    e, r = [], []
    for _ in range(15):
        e.append(median_ms(lambda: step(x, t), 5))
        r.append(median_ms(lambda: g(x, t), 5))
    em, rm = min(e), min(r)  # fastest of 15 alternating 5-run medians, as bench_trace
    print(f"LeNet-5 training step, batch {b}, {nodes} FX nodes")
    print(f"capture (make_fx)        {capture:.3f} ms")
    print(f"eager step               {em:.3f} ms")
    print(f"FX graph step            {rm:.3f} ms")
    print(f"FX graph over eager      {rm - em:+.3f} ms = {(rm - em) * 1e3 / nodes:+.2f} µs per node")
