"""Build the small random-weight N3Net test fixtures under tests/fixtures/.

    python3 python/make_fixture.py            # writes tests/fixtures/tiny and tests/fixtures/tiny-2ch

Each fixture folder holds
  model.onnx   the network exported by export_onnx.export_n3net (same contract as real exports)
  input.npy    float32 [H, W] (tiny) or [C, H, W] (tiny-2ch: noisy + constant sigma map), [0, 1] scale
  output.npy   float32 [H, W], the PyTorch output of n3net_model.N3Net on input.npy
  README.md    how it was made

Seeded and deterministic (CPU, 1 thread).  The weights are random (no checkpoint
is involved); the batch-norm statistics are random and non-trivial, and each
distance batch-norm is calibrated on the fixture input so that the softmax over
candidates is neither uniform nor one-hot.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

# Pin PyTorch's and oneDNN's CPU kernels to AVX2 before torch loads: AVX-512
# kernels round differently in the last bit, and the fixtures (batch-norm
# statistics calibrated on a forward pass, the reference output) must be the
# same bytes on every x86-64 machine that regenerates them.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_onnx import _random_init, export_n3net  # noqa: E402
from n3net_model import N3Net, N3NetConfig  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH = 39, 49
SEED = 20181203
SIGMA_MAP = 25.0 / 255.0


def fixture_config(in_channels: int) -> N3NetConfig:
    return N3NetConfig(
        in_channels=in_channels, out_channels=1, n3_blocks=2, interm_channels=4,
        dncnn_depth=3, dncnn_features=16, dncnn_kernel=3, dncnn_bn=True,
        embed_depth=3, embed_features=16, embed_kernel=3, embed_bn=True, embed_out=3,
        k=3, patch_size=6, patch_stride=4, window=5, temp_bias=0.1,
        external_temp=True, temp_avgpool=True, distance_bn=True,
    )


def fixture_input(in_channels: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(HEIGHT) / HEIGHT, np.arange(WIDTH) / WIDTH, indexing="ij")
    clean = 0.45 + 0.3 * np.sin(2 * math.pi * (1.7 * xx - 0.6 * yy)) * np.cos(2 * math.pi * 1.1 * yy) \
        + 0.15 * (xx + yy > 1.1)
    noisy = np.clip(clean + SIGMA_MAP * g.standard_normal(clean.shape), 0.0, 1.0)
    chans = [noisy] + [np.full_like(noisy, SIGMA_MAP)] * (in_channels - 1)
    return np.stack(chans).astype(np.float32)  # [C, H, W]


def calibrate_distance_bn(model: N3Net, x: torch.Tensor, gamma: float, beta: float) -> None:
    """Set each distance BN's running stats from the raw logits (-d) on x, block by block."""
    for i, nl in enumerate(model.nls):
        bn = nl.n3aggregation.aggregation.nnn.bn
        seen = []
        h = bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
        with torch.no_grad():
            model(x)
        h.remove()
        mean, var = float(seen[0].mean()), float(seen[0].var())
        bn.running_mean.fill_(mean + 0.1 * math.sqrt(var))
        bn.running_var.fill_(var * 1.3)
        # distinct per block: the exporter merges initializers with equal values
        bn.weight.data.fill_(gamma * (1.0 + 0.15 * i))
        bn.bias.data.fill_(beta * (1.0 - 0.2 * i))


def first_weight_stats(model: N3Net, x: torch.Tensor) -> list:
    """Per N3 block: mean and max over queries of the largest first-neighbour weight."""
    import n3net_model as nm
    captured = []
    orig = nm.relaxed_knn_weights

    def spy(logits, k):
        w = orig(logits, k)
        captured.append(w[:, 0].max(dim=-1).values)
        return w

    nm.relaxed_knn_weights = spy
    try:
        with torch.no_grad():
            model(x)
    finally:
        nm.relaxed_knn_weights = orig
    return [(float(c.mean()), float(c.max())) for c in captured]


def make(folder: str, in_channels: int, seed: int) -> None:
    torch.manual_seed(seed)
    cfg = fixture_config(in_channels)
    model = N3Net(cfg).eval()
    _random_init(model, seed)
    inp = fixture_input(in_channels, seed + 1)
    x = torch.from_numpy(inp)[None]
    calibrate_distance_bn(model, x, gamma=0.6, beta=0.25)
    peaks = first_weight_stats(model, x)
    os.makedirs(folder, exist_ok=True)
    out_path = os.path.join(folder, "model.onnx")
    diff, y = export_n3net(model, out_path, HEIGHT, WIDTH, sigma=None, source="random",
                           chunk=None, check_input=x.numpy(), threads=1)
    if not diff < README_BOUND:
        raise RuntimeError(f"onnxruntime vs PyTorch max abs diff {diff:.3e} >= {README_BOUND:g}")
    out = y[0, 0].astype(np.float32)
    np.save(os.path.join(folder, "input.npy"), inp if in_channels > 1 else inp[0])
    np.save(os.path.join(folder, "output.npy"), out)
    name = os.path.basename(folder)
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(README_TEMPLATE.format(
            name=name, in_channels=in_channels, H=HEIGHT, W=WIDTH, seed=seed,
            shape_in=f"[{in_channels}, {HEIGHT}, {WIDTH}]" if in_channels > 1 else f"[{HEIGHT}, {WIDTH}]",
            input_desc=("channel 0: smooth pattern + N(0, (25/255)^2) noise, clipped to [0, 1]; "
                        f"channel 1: constant sigma map {SIGMA_MAP!r} (25/255)") if in_channels > 1
            else "smooth pattern + N(0, (25/255)^2) noise, clipped to [0, 1]",
            bound=README_BOUND, out_min=float(out.min()), out_max=float(out.max()),
            peaks="; ".join(f"block {i}: mean {m:.2f}, max {mx:.3f}" for i, (m, mx) in enumerate(peaks)),
            cfg="\n".join(f"| {k} | {v} |" for k, v in cfg.to_dict().items()),
        ))
    print(f"{folder}: onnxruntime vs PyTorch max abs diff {diff:.3e}; output range "
          f"[{out.min():.4f}, {out.max():.4f}]; largest first-neighbour weight {peaks}")


# The onnxruntime-vs-PyTorch agreement the fixture READMEs state: a bound,
# so that regenerating them gives the same bytes on any CPU.
README_BOUND = 1e-6

README_TEMPLATE = """# Test fixture `{name}`: a reduced random-weight N3Net

Made by `python3 python/make_fixture.py` (seed {seed}, CPU, 1 thread; torch/onnx
versions in `python/requirements.txt`). Random weights: no checkpoint or data set
was used. Regenerating with the same versions gives the same files.

| file | content |
|---|---|
| `model.onnx` | the network, exported by `python/export_onnx.py`'s `export_n3net` at {H}x{W} (same contract as a real export: input `noisy` [1, {in_channels}, {H}, {W}], output `denoised` [1, 1, {H}, {W}], state-dict initializers, `n3net.*` metadata, `n3net.source` = `random`, no `n3net.sigma`) |
| `input.npy` | float32 {shape_in}: {input_desc} |
| `output.npy` | float32 [{H}, {W}]: output of the PyTorch model (`python/n3net_model.py`) on `input.npy` |

onnxruntime on `model.onnx` vs PyTorch: max abs difference below {bound:g}
(the exact figure depends on the CPU's onnxruntime kernels).
Output range [{out_min:.4f}, {out_max:.4f}].

Hyper-parameters (also in the ONNX metadata):

| name | value |
|---|---|
{cfg}

What it exercises: a non-square {H}x{W} image whose patch grid needs padding on both
axes, with odd padding (patch 6, stride 4: rows pad 1 top / 2 bottom, columns 0 left /
1 right; grid 10x12; fold counts 1, 2 and 4); a 5x5 search window that is shifted at
the borders (24 candidates); `embed_out` (3) different from `interm_channels` (4);
k = 3 (N3 output 16 channels); random non-trivial batch-norm statistics everywhere.
Each distance batch-norm was calibrated on this input (running mean/var from the raw
logits -d, gamma 0.6, 0.69, beta 0.25, 0.2) so that the neighbour weights are neither uniform
nor one-hot (largest first-neighbour weight per query: {peaks}).
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "fixtures"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    make(os.path.join(a.out_dir, "tiny"), 1, SEED)
    make(os.path.join(a.out_dir, "tiny-2ch"), 2, SEED + 100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
