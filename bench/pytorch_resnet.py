"""PyTorch's figure for `cargo run --release -p mlfw-vision --example bench_resnet` (same machine).

    v/bin/python bench/pytorch_resnet.py [STEPS]

ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool), as mlfw's `resnet18_cifar`;
batch 32 of random 3x32x32 images, cross-entropy, SGD momentum 0.9; median images/s of the
timed steps after 2 warm-up steps; 2 threads.
"""
import os, statistics, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

# Threads: 2, or BENCH_THREADS (for the thread-scaling table in BENCHMARKS.md).
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))

class ResNet18Cifar(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for i in range(4):
            cout = 64 << i
            for b in range(2):
                layers.append(Block(cin, cout, 2 if b == 0 and i > 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
torch.manual_seed(0)
model = ResNet18Cifar()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
rates = []
for step in range(2 + steps):
    t = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    if step >= 2:
        rates.append(32 / (time.perf_counter() - t))
print(f"pytorch {torch.__version__} ResNet-18 (CIFAR) training, batch 32: median {statistics.median(rates):.1f} images/s over {steps} steps")
