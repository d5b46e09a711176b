"""PyTorch reference for bench_matmul / bench_ops (run beside them in the same sitting).
python torch_ref.py [batch]   -- needs only torch; uses 2 threads."""
import sys, time, statistics
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.set_grad_enabled(False)

def med_ms(f, budget=1.0):
    f(); f()
    t = time.perf_counter(); f(); one = time.perf_counter() - t
    reps = max(5, min(100, int(budget / max(one, 1e-9))))
    v = []
    for _ in range(reps):
        t = time.perf_counter(); f(); v.append((time.perf_counter() - t) * 1e3)
    return statistics.median(v), min(v)

print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
for n in (1024, 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms, best = med_ms(lambda: a @ b, 2.0)
    print(f"matmul f32 {n}: median {2 * n**3 / ms / 1e6:.1f} GFLOP/s, best {2 * n**3 / best / 1e6:.1f}")

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 256
print(f"LeNet-5 convolutions, batch {batch} (ms, median / min)")
print("| layer | forward | backward input | backward weight |")
for name, xs, ws, pad in [("conv1", (batch, 1, 28, 28), (6, 1, 5, 5), 2),
                          ("conv2", (batch, 6, 14, 14), (16, 6, 5, 5), 0)]:
    x, w = torch.randn(*xs), torch.randn(*ws) * 0.1
    gy = torch.ones_like(F.conv2d(x, w, padding=pad))
    fwd = med_ms(lambda: F.conv2d(x, w, padding=pad))
    bi = med_ms(lambda: torch.nn.grad.conv2d_input(x.shape, w, gy, padding=pad))
    bw = med_ms(lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, padding=pad))
    f = lambda t: f"{t[0]:.3f} / {t[1]:.3f}"
    print(f"| {name} | {f(fwd)} | {f(bi)} | {f(bw)} |")

n = 16 << 20
a, b = torch.rand(n), torch.rand(n)
print("16M f32, median ms")
for name, f in [("clone", lambda: a.clone()), ("add", lambda: a + b), ("mul", lambda: a * b),
                ("exp", lambda: a.exp()), ("sum", lambda: a.sum())]:
    print(f"| {name} | {med_ms(f)[0]:.2f} |")
