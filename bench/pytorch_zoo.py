"""PyTorch's figures beside `mlfw bench --model M` for the CIFAR-sized convolutional models.

    v/bin/python bench/pytorch_zoo.py MODEL [--batch B] [--steps S] [--warmup W] [--threads T]

MODEL: resnet18_cifar, resnet34_cifar (3x3 stem, stride 1, no max-pool, as mlfw's), or
vgg11_bn (torchvision's layout: features with batch norm, 7x7 adaptive average pool,
25088-4096-4096-classes classifier with dropout), all for 10 classes on random 3x32x32
inputs. As `mlfw bench`: SGD lr 0.01 momentum 0.9, cross-entropy, median step time of the
timed steps after the warm-up steps, then the same for inference (eval mode, no_grad).
Prints one line per phase: ms/step and images/s. Threads: 2 unless --threads.
"""
import argparse, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F


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


class ResNetCifar(nn.Module):
    def __init__(self, blocks, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for i, n in enumerate(blocks):
            cout = 64 << i
            for b in range(n):
                layers.append(Block(cin, cout, 2 if b == 0 and i > 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def vgg11_bn(classes=10):
    layers, cin = [], 3
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d((7, 7)),
        nn.Flatten(),
        nn.Linear(512 * 49, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, classes),
    )


MODELS = {
    "resnet18_cifar": lambda: ResNetCifar([2, 2, 2, 2]),
    "resnet34_cifar": lambda: ResNetCifar([3, 4, 6, 3]),
    "vgg11_bn": vgg11_bn,
}


def median_time(warmup, steps, f):
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        f()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-infer", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = MODELS[a.model]()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    t = median_time(a.warmup, a.steps, train_step)
    tag = f"pytorch {torch.__version__} {a.model} b{a.batch} threads {a.threads}"
    print(f"{tag} train {t * 1e3:.1f} ms/step {a.batch / t:.1f} img/s")
    if not a.no_infer:
        model.eval()
        with torch.no_grad():
            t = median_time(a.warmup, a.steps, lambda: model(x))
        print(f"{tag} inference {t * 1e3:.1f} ms/step {a.batch / t:.1f} img/s")


if __name__ == "__main__":
    main()
