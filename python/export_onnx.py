"""Export an N3Net checkpoint to ONNX (fixed input size) and check the result.

    python3 python/export_onnx.py --checkpoint n3net_sigma25.t7 --out /tmp/n3net.onnx \
        --height 256 --width 256

Hyper-parameters come from ``--args`` (default: ``<checkpoint stem>.args.pkl``
beside the checkpoint, if present), else the spec defaults; every one can be
overridden by a flag.  ``in_channels``/``out_channels``/``n3_blocks`` are read
from the state dict unless given.  ``--random --seed S`` exports a randomly
initialised network instead of a checkpoint.

The export uses the TorchScript exporter, opset 17, model in eval mode,
``training=PRESERVE`` and no constant folding, so that BatchNormalization
nodes stay separate and every initializer keeps its state-dict name.  After
writing the file the tool asserts the importer contract (names, shapes,
initializers, metadata) and compares onnxruntime with PyTorch on a smooth
image + noise: max abs difference must be <= 1e-5 (else exit status 1).
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import pickle
import sys
import warnings
from typing import Dict, Optional, Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from n3net_model import (BN_EPS, N3Net, N3NetConfig, config_from_training_args,  # noqa: E402
                         infer_io_channels, load_checkpoint)

FORMAT_VERSION = "1"
OPSET = 17
TOLERANCE = 1e-5
GATHER_BUDGET = 1 << 26  # floats per gathered candidate tensor in one query chunk


# --------------------------------------------------------------------------- #
# model construction
# --------------------------------------------------------------------------- #

def default_args_path(checkpoint: str) -> Optional[str]:
    stem, _ = os.path.splitext(checkpoint)
    p = stem + ".args.pkl"
    return p if os.path.exists(p) else None


def load_training_args(path: str):
    with open(path, "rb") as f:
        return pickle.load(f)  # legacy pickle written by the authors' training script


def build_model_from_files(checkpoint: Optional[str], args_path: Optional[str] = None,
                           overrides: Optional[Dict] = None) -> Tuple[N3Net, N3NetConfig, Optional[object], str]:
    """Returns (model in eval mode, config, training sigma or None, source name)."""
    overrides = dict(overrides or {})
    sd = None
    cfg = N3NetConfig()
    sigma = None
    if checkpoint is not None:
        sd, saved_config = load_checkpoint(checkpoint)
        if saved_config is not None:
            cfg = N3NetConfig(**saved_config)
        elif args_path is None:
            args_path = default_args_path(checkpoint)
    if args_path:
        cfg, sigma = config_from_training_args(load_training_args(args_path))
    if sd is not None:
        cfg.in_channels, cfg.out_channels, cfg.n3_blocks = infer_io_channels(sd)
    for key, val in overrides.items():
        if val is not None:
            if not hasattr(cfg, key):
                raise KeyError(key)
            setattr(cfg, key, val)
    model = N3Net(cfg)
    if sd is not None:
        model.load_state_dict(sd, strict=True)
    model.eval()
    source = os.path.basename(checkpoint) if checkpoint else "random"
    return model, cfg, sigma, source


# --------------------------------------------------------------------------- #
# export + contract
# --------------------------------------------------------------------------- #

def _s(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def metadata_for(cfg: N3NetConfig, height: int, width: int, sigma, source: str) -> Dict[str, str]:
    md = {
        "n3net.format_version": FORMAT_VERSION,
        "n3net.in_channels": _s(cfg.in_channels),
        "n3net.out_channels": _s(cfg.out_channels),
        "n3net.n3_blocks": _s(cfg.n3_blocks),
        "n3net.interm_channels": _s(cfg.interm_channels),
        "n3net.dncnn_depth": _s(cfg.dncnn_depth),
        "n3net.dncnn_features": _s(cfg.dncnn_features),
        "n3net.dncnn_kernel": _s(cfg.dncnn_kernel),
        "n3net.dncnn_bn": _s(cfg.dncnn_bn),
        "n3net.embed_depth": _s(cfg.embed_depth),
        "n3net.embed_features": _s(cfg.embed_features),
        "n3net.embed_kernel": _s(cfg.embed_kernel),
        "n3net.embed_bn": _s(cfg.embed_bn),
        "n3net.embed_out": _s(cfg.embed_out),
        "n3net.k": _s(cfg.k),
        "n3net.patch_size": _s(cfg.patch_size),
        "n3net.patch_stride": _s(cfg.patch_stride),
        "n3net.window": _s(cfg.window),
        "n3net.temp_bias": _s(float(cfg.temp_bias)),
        "n3net.external_temp": _s(cfg.external_temp),
        "n3net.temp_avgpool": _s(cfg.temp_avgpool),
        "n3net.distance_bn": _s(cfg.distance_bn),
        "n3net.bn_eps": _s(BN_EPS),
        "n3net.export_height": _s(int(height)),
        "n3net.export_width": _s(int(width)),
        "n3net.source": source,
    }
    if sigma is not None:
        if isinstance(sigma, str):
            md["n3net.sigma"] = sigma
        elif float(sigma).is_integer():
            md["n3net.sigma"] = str(int(sigma))
        else:
            md["n3net.sigma"] = repr(float(sigma))
    return md


def contract_tensors(model: N3Net) -> Dict[str, np.ndarray]:
    """State-dict tensors that must appear as initializers (all but bn1 and counters)."""
    out = {}
    for name, t in model.state_dict().items():
        parts = name.split(".")
        if name.endswith("num_batches_tracked"):
            continue
        if parts[0] == "blocks" and parts[2] == "bn1":
            continue
        out[name] = t.detach().cpu().numpy().astype(np.float32)
    return out


def auto_chunk(model: N3Net, height: int, width: int) -> Optional[int]:
    if not model.nls:
        return None
    blk = model.nls[0]
    cfg = model.cfg
    blk.chunk = None
    P = blk.plan(height, width)
    per_query = P.M * cfg.patch_size ** 2 * max(cfg.embed_out, cfg.interm_channels)
    c = max(1, GATHER_BUDGET // per_query)
    return None if c >= P.N else int(c)


def smooth_test_input(cfg: N3NetConfig, height: int, width: int, seed: int = 1234) -> np.ndarray:
    """[1, C, H, W] float32 in [0, 1]: smooth pattern + noise (channel 0), constant maps after."""
    g = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    clean = 0.5 + 0.25 * np.sin(2 * math.pi * (1.3 * xx + 0.4 * yy)) * np.cos(2 * math.pi * 0.9 * yy) \
        + 0.15 * np.tanh(8 * (xx - 0.6 + 0.2 * yy))
    noisy = np.clip(clean + 0.1 * g.standard_normal(clean.shape), 0.0, 1.0)
    chans = [noisy] + [np.full_like(noisy, 0.1) for _ in range(cfg.in_channels - 1)]
    return np.stack(chans)[None].astype(np.float32)


def _onnx_export(model: N3Net, x: torch.Tensor, out: str) -> None:
    kwargs = dict(
        input_names=["noisy"], output_names=["denoised"], opset_version=OPSET,
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
        export_params=True, keep_initializers_as_inputs=False,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    torch.onnx.export(model, (x,), out, **kwargs)


def check_contract(path: str, model: N3Net, height: int, width: int, metadata: Dict[str, str]) -> None:
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    cfg = model.cfg
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    real_inputs = [i for i in g.input if i.name not in inits]

    def shape_of(vi):
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]

    assert [i.name for i in real_inputs] == ["noisy"], [i.name for i in real_inputs]
    assert real_inputs[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert shape_of(real_inputs[0]) == [1, cfg.in_channels, height, width], shape_of(real_inputs[0])
    assert [o.name for o in g.output] == ["denoised"], [o.name for o in g.output]
    assert g.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert shape_of(g.output[0]) == [1, cfg.out_channels, height, width], shape_of(g.output[0])

    for name, val in contract_tensors(model).items():
        assert name in inits, f"initializer {name!r} missing from the ONNX graph"
        t = inits[name]
        assert t.data_type == onnx.TensorProto.FLOAT, (name, t.data_type)
        arr = numpy_helper.to_array(t)
        assert arr.shape == val.shape, (name, arr.shape, val.shape)
        assert np.array_equal(arr, val), f"initializer {name!r} differs from the state dict"

    props = {p.key: p.value for p in m.metadata_props}
    for k, v in metadata.items():
        assert props.get(k) == v, (k, props.get(k), v)
    ops = {n.op_type for n in g.node}
    forbidden = {"Col2Im", "ATen", "PythonOp"} & ops
    assert not forbidden, forbidden
    assert "BatchNormalization" in ops or not any(
        isinstance(mm, torch.nn.BatchNorm2d) for mm in model.modules())
    onnx.checker.check_model(m)


def ort_vs_torch(path: str, model: N3Net, x: np.ndarray, threads: int = 1) -> Tuple[float, np.ndarray, np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    (y_ort,) = sess.run(["denoised"], {"noisy": x})
    with torch.no_grad():
        y_t = model(torch.from_numpy(x)).numpy()
    return float(np.abs(y_ort - y_t).max()), y_t, y_ort


def export_n3net(model: N3Net, out: str, height: int, width: int, sigma=None, source: str = "random",
                 chunk: Optional[int] = -1, check_input: Optional[np.ndarray] = None,
                 threads: int = 1, verbose: bool = True,
                 compare: bool = True) -> Tuple[float, Optional[np.ndarray]]:
    """Export, assert the contract, compare onnxruntime vs PyTorch.

    chunk: -1 = automatic, None/0 = no chunking, n = query patches per chunk.
    compare: False skips the onnxruntime run (for sizes it cannot afford);
    the diff is then NaN and the PyTorch output None.
    Returns (max abs diff, PyTorch output on the check input).  Raises on failure.
    """
    import onnx

    model.eval()
    cfg = model.cfg
    if chunk == -1:
        chunk = auto_chunk(model, height, width)
    model.set_chunk(chunk or None)
    x = torch.from_numpy(smooth_test_input(cfg, height, width)) if check_input is None \
        else torch.from_numpy(np.ascontiguousarray(check_input, dtype=np.float32))
    assert tuple(x.shape) == (1, cfg.in_channels, height, width), x.shape
    with torch.no_grad():
        for nl in model.nls:
            nl.plan(height, width)  # builds the size-dependent plans outside the trace
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _onnx_export(model, x, out)
    metadata = metadata_for(cfg, height, width, sigma, source)
    m = onnx.load(out)
    del m.metadata_props[:]
    for k, v in metadata.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, out)
    check_contract(out, model, height, width, metadata)
    if verbose:
        n_nodes = len(m.graph.node)
        print(f"wrote {out}: {os.path.getsize(out)} bytes, {n_nodes} nodes, "
              f"{height}x{width}, chunk={chunk}")
    if not compare:
        if verbose:
            print("contract OK; onnxruntime vs PyTorch not compared (--no-compare)")
        return float("nan"), None
    diff, y_t, _ = ort_vs_torch(out, model, x.numpy(), threads)
    if verbose:
        print(f"contract OK; onnxruntime vs PyTorch max abs diff = {diff:.3e} (tolerance {TOLERANCE:g})")
    if not diff <= TOLERANCE:
        raise RuntimeError(f"onnxruntime vs PyTorch max abs diff {diff:.3e} > {TOLERANCE:g}")
    return diff, y_t


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #

def _bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {s!r}")


def _random_init(model: N3Net, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * math.sqrt(1.0 / fan_in))
                if mod.bias is not None:
                    mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=g))
            elif isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                c = mod.num_features
                mod.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=g))
                mod.bias.copy_(0.05 * torch.randn(c, generator=g))


HYPER_FLAGS = [
    ("in_channels", int), ("out_channels", int), ("n3_blocks", int), ("interm_channels", int),
    ("dncnn_depth", int), ("dncnn_features", int), ("dncnn_kernel", int), ("dncnn_bn", _bool),
    ("embed_depth", int), ("embed_features", int), ("embed_kernel", int), ("embed_bn", _bool),
    ("embed_out", int), ("k", int), ("patch_size", int), ("patch_stride", int), ("window", int),
    ("temp_bias", float), ("external_temp", _bool), ("temp_avgpool", _bool), ("distance_bn", _bool),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="authors' .t7 checkpoint (state dict under 'net'), "
                     "or weights.pt written by train.py (with its configuration)")
    src.add_argument("--random", action="store_true", help="random weights (for tests)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random")
    ap.add_argument("--out", required=True)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--args", default=None, help="training args pickle (default: beside the checkpoint)")
    ap.add_argument("--sigma", default=None, help="training sigma (0-255) for the metadata, or 'blind' for a "
                    "noise-level-conditioned model; overrides the args")
    ap.add_argument("--chunk", type=int, default=-1,
                    help="query patches per chunk inside the graph (-1 auto, 0 none)")
    ap.add_argument("--threads", type=int, default=1, help="threads for the checks")
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the onnxruntime vs PyTorch comparison (large sizes)")
    for name, typ in HYPER_FLAGS:
        ap.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    overrides = {name: getattr(a, name) for name, _ in HYPER_FLAGS}
    try:
        if a.random:
            torch.manual_seed(a.seed)
            model, cfg, sigma, source = build_model_from_files(None, a.args, overrides)
            _random_init(model, a.seed)
        else:
            model, cfg, sigma, source = build_model_from_files(a.checkpoint, a.args, overrides)
    except (NotImplementedError, ValueError, KeyError, RuntimeError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if a.sigma is not None:
        sigma = a.sigma if a.sigma == "blind" else float(a.sigma)
    try:
        export_n3net(model, a.out, a.height, a.width, sigma=sigma, source=source,
                     chunk=a.chunk, threads=a.threads, compare=not a.no_compare)
    except (AssertionError, RuntimeError) as e:
        print(f"EXPORT CHECK FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
