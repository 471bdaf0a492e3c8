"""Self-tests of train.py: a tiny configuration, resumed training equals
uninterrupted training bit for bit, and the export of the result."""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402

TINY = ["--dncnn-depth", "3", "--dncnn-features", "8", "--embed-features", "8", "--embed-depth", "2",
        "--k", "2", "--patch-size", "5", "--patch-stride", "3", "--window", "5",
        "--crop", "24", "--batch", "2", "--log-every", "1", "--threads", "1", "--warmup", "2"]


def _images(folder: str) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):
        a = (rng.random((32, 40)) * 255).astype(np.uint8)
        Image.fromarray(a).save(os.path.join(folder, f"img{i}.png"))


def test_resume_equals_uninterrupted():
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        _images(data)
        straight = os.path.join(tmp, "straight")
        resumed = os.path.join(tmp, "resumed")
        assert train.main(["--data", data, "--out-dir", straight, "--iters", "4", "--save-every", "2"] + TINY) == 0
        assert train.main(["--data", data, "--out-dir", resumed, "--iters", "4", "--save-every", "2",
                           "--max-minutes", "1e-9"] + TINY) == 0
        ck = torch.load(os.path.join(resumed, "checkpoint.pt"), weights_only=False)
        assert ck["iter"] == 1, ck["iter"]
        assert train.main(["--data", data, "--out-dir", resumed, "--iters", "4", "--save-every", "2"] + TINY) == 0
        a = torch.load(os.path.join(straight, "weights.pt"), weights_only=False)
        b = torch.load(os.path.join(resumed, "weights.pt"), weights_only=False)
        assert a["config"] == b["config"] and a["config"]["in_channels"] == 2
        for name, t in a["net"].items():
            assert torch.equal(t, b["net"][name]), name
        onnx_path = os.path.join(tmp, "tiny.onnx")
        assert train.main(["--data", data, "--out-dir", straight, "--iters", "4", "--export", onnx_path,
                           "--export-size", "24"] + TINY) == 0
        assert os.path.getsize(onnx_path) > 0


def test_identity_start():
    cfg = train.build_config(train.parse_args(["--data", ".", "--out-dir", "."] + TINY))
    net = train.N3Net(cfg)
    train.zero_init_residuals(net)
    net.eval()
    x = torch.rand(1, 2, 24, 24)
    with torch.no_grad():
        y = net(x)
    assert torch.allclose(y, x[:, :1]), float((y - x[:, :1]).abs().max())


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
