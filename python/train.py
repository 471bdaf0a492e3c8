"""Train an N3Net on grey images with Gaussian noise, then export it to ONNX.

    python3 python/train.py --data ../shared/data/train/Train400 --out-dir target/train/gray-blind \
        --preset gray-blind

* Data: every PNG in ``--data`` (converted to grey), held in memory; each
  sample is a random crop with a random flip / 90-degree rotation.
* Noise: additive white Gaussian, sigma drawn uniformly from
  ``[--sigma-min, --sigma-max]`` (0-255 scale) per crop.  A model with
  ``in_channels = 2`` gets the noise level as a second input plane (a constant
  sigma/255 map for training; cameras feed a per-pixel map at inference).
  With ``in_channels = 1`` the noise level is not an input (a fixed-sigma
  model: use ``--sigma-min = --sigma-max``).
* Initialisation: PyTorch's defaults, except that the last convolution of
  each DnCNN stage starts at zero (the network starts as the identity).
* Optimiser: Adam, learning rate with linear warm-up and cosine decay over
  ``--iters`` iterations; mean squared error against the clean crop.
* The relaxation's ``log(1 - w)`` keeps its exact values but its gradient is
  capped where ``w`` rounds to 1 (``n3net_model.log1mexp_capped_grad``):
  the exact one, ``-1/log w``, overflows into NaN there.
* Reproducible and resumable: one seed drives the crops, the noise and the
  initialisation; ``checkpoint.pt`` in the output folder (written atomically
  every ``--save-every`` iterations) holds the weights, the optimiser, the
  iteration and every random state, and a rerun of the same command resumes
  from it.  ``train.log`` gets one line per ``--log-every`` iterations.
* At the end the weights are written as ``weights.pt`` (state dict under
  ``net`` and the configuration under ``config``) and exported with the
  export tool to ``--export`` (fixed input size ``--export-size``).

The same command runs on a GPU (``--device cuda``) with a bigger ``--preset``
or explicit architecture flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from n3net_model import N3Net, N3NetConfig  # noqa: E402

# Architecture presets.  "paper": the published grey denoiser.  "gray-blind":
# the project's default model, sized to train on two CPU cores in about 2 hours.
PRESETS: Dict[str, Dict] = {
    "paper": dict(in_channels=1, n3_blocks=2, interm_channels=8, dncnn_depth=6, dncnn_features=64,
                  embed_depth=3, embed_features=64, embed_out=8, k=7, patch_size=10, patch_stride=5,
                  window=15),
    "gray-blind": dict(in_channels=2, n3_blocks=1, interm_channels=8, dncnn_depth=7, dncnn_features=32,
                       embed_depth=3, embed_features=32, embed_out=8, k=4, patch_size=10, patch_stride=5,
                       window=15),
    "gray-blind-large": dict(in_channels=2, n3_blocks=2, interm_channels=8, dncnn_depth=6, dncnn_features=64,
                             embed_depth=3, embed_features=64, embed_out=8, k=7, patch_size=10,
                             patch_stride=5, window=15),
}


def load_images(folder: str) -> List[np.ndarray]:
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
    if not names:
        raise SystemExit(f"no .png images in {folder}")
    return [np.asarray(Image.open(os.path.join(folder, n)).convert("L"), dtype=np.float32) / 255.0
            for n in names]


class Sampler:
    """Random crops with the 8 flips/rotations, from one numpy generator."""

    def __init__(self, images: List[np.ndarray], crop: int, rng: np.random.Generator):
        self.images = [im for im in images if min(im.shape) >= crop]
        if not self.images:
            raise SystemExit(f"no training image is at least {crop}x{crop}")
        self.crop = crop
        self.rng = rng

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, 1, self.crop, self.crop), dtype=np.float32)
        for b in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.crop + 1)
            x = self.rng.integers(im.shape[1] - self.crop + 1)
            c = im[y:y + self.crop, x:x + self.crop]
            c = np.rot90(c, int(self.rng.integers(4)))
            if self.rng.integers(2):
                c = c[:, ::-1]
            out[b, 0] = c
        return out


def make_input(clean: torch.Tensor, sigma: torch.Tensor, in_channels: int, gen: torch.Generator) -> torch.Tensor:
    """clean [B,1,H,W], sigma [B] on the 0-1 scale -> network input."""
    noise = torch.randn(clean.shape, generator=gen, device=clean.device) * sigma.view(-1, 1, 1, 1)
    noisy = clean + noise
    if in_channels == 1:
        return noisy
    return torch.cat([noisy, sigma.view(-1, 1, 1, 1).expand_as(noisy)], dim=1)


def zero_init_residuals(model: N3Net) -> None:
    """Zero the last convolution of every DnCNN stage, so that training starts
    from the identity map (each stage only adds its residual) instead of from
    a random residual as large as the image."""
    with torch.no_grad():
        for block in model.blocks:
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()


def lr_at(it: int, args) -> float:
    warm = max(1, args.warmup)
    if it < warm:
        return args.lr * (it + 1) / warm
    t = (it - warm) / max(1, args.iters - warm)
    return args.lr_min + 0.5 * (args.lr - args.lr_min) * (1.0 + math.cos(math.pi * min(1.0, t)))


def batch_loss(out: torch.Tensor, clean: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(out, clean)
    per_crop = ((out - clean) ** 2).flatten(1).mean(1)
    return torch.log(per_crop + 1e-5).mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(F.mse_loss(a.clamp(0, 1), b))
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def save_atomic(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def build_config(args) -> N3NetConfig:
    cfg = N3NetConfig(**PRESETS[args.preset])
    for f in dataclasses.fields(N3NetConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            setattr(cfg, f.name, v)
    cfg.out_channels = 1
    cfg.validate()
    return cfg


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of training PNGs (e.g. Train400)")
    ap.add_argument("--out-dir", required=True, help="checkpoint, log and weights go here")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="gray-blind")
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=1e-5)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--sigma-min", type=float, default=0.0, help="0-255 scale")
    ap.add_argument("--sigma-max", type=float, default=75.0, help="0-255 scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss", choices=["mse", "psnr"], default="mse",
                    help="mse: mean squared error over the batch; psnr: mean over crops of "
                         "log(mse + 1e-5), i.e. the mean PSNR that evaluation reports, so low "
                         "noise levels weigh as much as high ones")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--export", default=None, help="ONNX file to write at the end")
    ap.add_argument("--export-size", type=int, default=64, help="side of the ONNX export's fixed input")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="save and stop at this iteration (a later run with other --iters resumes there)")
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop (after saving) when this much wall time has passed; rerun to resume")
    for f in dataclasses.fields(N3NetConfig):
        if f.name in ("out_channels",):
            continue
        typ = f.type if isinstance(f.type, type) else eval(f.type)  # dataclass annotations are strings
        if typ is bool:
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            type=lambda s: s.lower() in ("1", "true", "yes"))
        else:
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=typ, default=None)
    args = ap.parse_args(argv)
    if not 0 <= args.sigma_min <= args.sigma_max:
        ap.error("need 0 <= --sigma-min <= --sigma-max")
    if args.iters < 1 or args.batch < 1:
        ap.error("--iters and --batch must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = build_config(args)
    os.makedirs(args.out_dir, exist_ok=True)
    ck_path = os.path.join(args.out_dir, "checkpoint.pt")
    log_path = os.path.join(args.out_dir, "train.log")
    dev = torch.device(args.device)

    torch.manual_seed(args.seed)
    model = N3Net(cfg)
    zero_init_residuals(model)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator(device=dev).manual_seed(args.seed + 1)
    start = 0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path, map_location=dev, weights_only=False)
        if ck["config"] != cfg.to_dict():
            raise SystemExit(f"{ck_path} was written for another configuration; use another --out-dir")
        model.load_state_dict(ck["net"])
        opt.load_state_dict(ck["optim"])
        rng.bit_generator.state = ck["numpy_rng"]
        gen.set_state(ck["torch_gen"].cpu() if dev.type == "cpu" else ck["torch_gen"])
        torch.set_rng_state(ck["torch_rng"])
        start = int(ck["iter"])
        print(f"resuming at iteration {start} from {ck_path}")

    images = load_images(args.data)
    sampler = Sampler(images, args.crop, rng)
    # A fixed check batch (its own generator, so resuming does not change it).
    vrng = np.random.default_rng(10_000 + args.seed)
    vclean = torch.from_numpy(Sampler(images, args.crop, vrng).batch(16)).to(dev)
    vgen = torch.Generator(device=dev).manual_seed(10_001 + args.seed)
    vsigma = torch.full((16,), 25.0 / 255.0, device=dev)
    vinput = make_input(vclean, vsigma, cfg.in_channels, vgen)

    nparams = sum(p.numel() for p in model.parameters())
    with open(log_path, "a") as log:
        if start == 0:
            log.write(json.dumps({"config": cfg.to_dict(), "args": vars(args), "parameters": nparams}) + "\n")
        print(f"{nparams} parameters; {len(images)} training images; iterations {start}..{args.iters}")

        def save(it: int) -> None:
            save_atomic({"net": model.state_dict(), "optim": opt.state_dict(), "config": cfg.to_dict(),
                         "numpy_rng": rng.bit_generator.state, "torch_gen": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "iter": it}, ck_path)

        t0 = time.time()
        run_loss, run_n = 0.0, 0
        it = start
        while it < args.iters:
            model.train()
            for group in opt.param_groups:
                group["lr"] = lr_at(it, args)
            clean = torch.from_numpy(sampler.batch(args.batch)).to(dev)
            u = torch.from_numpy(rng.random(args.batch, dtype=np.float32)).to(dev)
            sigma = (args.sigma_min + u * (args.sigma_max - args.sigma_min)) / 255.0
            x = make_input(clean, sigma, cfg.in_channels, gen)
            loss = batch_loss(model(x), clean, args.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            run_loss += float(loss.detach())
            run_n += 1
            if it % args.log_every == 0 or it == args.iters:
                model.eval()
                with torch.no_grad():
                    vpsnr = psnr(model(vinput), vclean)
                el = time.time() - t0
                line = {"iter": it, "loss": run_loss / run_n, "lr": lr_at(it - 1, args),
                        "check_psnr_s25": round(vpsnr, 3), "seconds": round(el, 1),
                        "px_per_s": round((it - start) * args.batch * args.crop ** 2 / max(el, 1e-9))}
                log.write(json.dumps(line) + "\n")
                log.flush()
                print(line, flush=True)
                run_loss, run_n = 0.0, 0
            if it % args.save_every == 0 or it == args.iters:
                save(it)
            if it == args.stop_at:
                save(it)
                print(f"stopping at iteration {it} (--stop-at); rerun to resume")
                return 0
            if args.max_minutes > 0 and time.time() - t0 > 60 * args.max_minutes:
                save(it)
                print(f"stopping after {args.max_minutes} minutes at iteration {it}; rerun to resume")
                return 0

    model.eval()
    weights = os.path.join(args.out_dir, "weights.pt")
    torch.save({"net": {k: v.cpu() for k, v in model.state_dict().items()}, "config": cfg.to_dict()}, weights)
    print(f"wrote {weights}")
    if args.export:
        from export_onnx import export_n3net
        model.cpu()
        sigma = "blind" if cfg.in_channels == 2 else args.sigma_max
        export_n3net(model, args.export, args.export_size, args.export_size, sigma=sigma,
                     source=f"n3net train.py preset={args.preset} iters={args.iters} seed={args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
