"""PyTorch N3Net (Neural Nearest Neighbors Networks, Ploetz & Roth, NeurIPS 2018).

Clean-room implementation written from the project's specification
(docs: ``n3net-spec.md``).  Inference only.

Structure (``n3_blocks`` = B):

    DnCNN_0 -> N3 block_0 -> DnCNN_1 -> ... -> N3 block_{B-1} -> DnCNN_B

* DnCNN_0: ``in_channels -> interm_channels``; DnCNN_i (0 < i < B):
  ``interm*(k+1) -> interm``; DnCNN_B: ``interm*(k+1) -> out_channels``
  (with B = 0 the single DnCNN maps ``in_channels -> out_channels``).
* Each DnCNN adds its input to the first ``min(in, out)`` output channels.
* Each N3 block maps ``interm -> interm*(k+1)``: ``[x, z1-x, ..., zk-x]``.

Module / parameter names reproduce the authors' checkpoint layout::

    blocks.{i}.conv1 (bias)      blocks.{i}.bn1 (present when dncnn_bn, NEVER applied)
    blocks.{i}.layer1 = Sequential([conv, bn, relu] * (depth - 2))
    blocks.{i}.conv2 (bias)
    nls.{i}.embedcnn = Sequential([conv, bn, relu] * (embed_depth - 1) + [conv(bias)])
    nls.{i}.tempcnn  = same, last conv has 1 output channel
    nls.{i}.n3aggregation.aggregation.nnn.bn = BatchNorm over 1 channel (distance_bn)

Project conventions where the spec/checkpoints do not fix a layout:

* ``dncnn_bn=False`` / ``embed_bn=False``: the middle convolutions get a bias
  and the batch-norm slot of each ``[conv, bn, relu]`` triple is an
  ``nn.Identity`` (so Sequential indices stay 0, 3, 6, ...); no ``bn1``.
* ``temp_avgpool=False``: the log-temperature of a patch is the value of the
  (padded) temperature map at the patch's pixel ``(p//2, p//2)``.
* Window: ``w = min(window, n)`` per grid axis, window start
  ``clamp(i - window//2, 0, n - w)``.
* ``patch_stride <= patch_size`` and image side ``>= patch_size`` are required.

The N3 block only uses operators that export to standard ONNX (opset 17):
one-hot Conv for unfold, Gather with precomputed candidate indices, MatMul,
LogSoftmax, Exp, Log, Clip, Where, AveragePool, ConvTranspose for fold.
The candidate indices depend on the image size; they are computed per
(H, W) and cached, so an ONNX export is valid for one input size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
LN_HALF = math.log(0.5)


@dataclass
class N3NetConfig:
    in_channels: int = 1
    out_channels: int = 1
    n3_blocks: int = 2
    interm_channels: int = 8
    dncnn_depth: int = 6
    dncnn_features: int = 64
    dncnn_kernel: int = 3
    dncnn_bn: bool = True
    embed_depth: int = 3
    embed_features: int = 64
    embed_kernel: int = 3
    embed_bn: bool = True
    embed_out: int = 8
    k: int = 7
    patch_size: int = 10
    patch_stride: int = 5
    window: int = 15
    temp_bias: float = 0.1
    external_temp: bool = True
    temp_avgpool: bool = True
    distance_bn: bool = True

    def validate(self) -> None:
        def pos(name):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"N3NetConfig.{name} must be a positive int, got {v!r}")

        for name in ("in_channels", "out_channels", "interm_channels", "dncnn_features",
                     "dncnn_kernel", "embed_depth", "embed_features", "embed_kernel",
                     "embed_out", "k", "patch_size", "patch_stride", "window"):
            pos(name)
        if not isinstance(self.n3_blocks, int) or self.n3_blocks < 0:
            raise ValueError(f"n3_blocks must be an int >= 0, got {self.n3_blocks!r}")
        if not isinstance(self.dncnn_depth, int) or self.dncnn_depth < 2:
            raise ValueError(f"dncnn_depth must be >= 2, got {self.dncnn_depth!r}")
        for name in ("dncnn_kernel", "embed_kernel"):
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd (same-size zero padding), got {getattr(self, name)}")
        if self.patch_stride > self.patch_size:
            raise ValueError("patch_stride must be <= patch_size (every pixel must be covered by a patch)")
        if not self.temp_bias > 0:
            raise ValueError(f"temp_bias must be > 0, got {self.temp_bias!r}")
        if not self.external_temp:
            raise NotImplementedError(
                "external_temp=False (a learned scalar temperature instead of the temperature CNN) "
                "is not supported by this implementation; only external_temp=True is")

    @property
    def n3_out_channels(self) -> int:
        return self.interm_channels * (self.k + 1)

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


def config_from_training_args(args) -> Tuple[N3NetConfig, Optional[object]]:
    """Map the authors' training args (a Namespace or dict) to a config.

    Returns ``(config, sigma)``; sigma is the training noise level (255 scale)
    or None.  ``window`` and ``temp_avgpool`` are not part of the args: spec
    defaults are used.
    """
    if isinstance(args, dict) and "parsed_args" in args:
        args = args["parsed_args"]
    a = vars(args) if not isinstance(args, dict) else args
    cfg = N3NetConfig()
    if "nfeatures_interm" in a:
        cfg.interm_channels = int(a["nfeatures_interm"])
    if "ndncnn" in a:
        cfg.n3_blocks = int(a["ndncnn"]) - 1
    if "nl_patchsize" in a:
        cfg.patch_size = int(a["nl_patchsize"])
    if "nl_k" in a:
        cfg.k = int(a["nl_k"])
    if "nl_stride" in a:
        cfg.patch_stride = int(a["nl_stride"])
    d = a.get("dncnn") or {}
    cfg.dncnn_features = int(d.get("features", cfg.dncnn_features))
    cfg.dncnn_depth = int(d.get("depth", cfg.dncnn_depth))
    cfg.dncnn_kernel = int(d.get("kernel", cfg.dncnn_kernel))
    cfg.dncnn_bn = bool(d.get("bn", cfg.dncnn_bn))
    e = a.get("embedcnn") or {}
    cfg.embed_features = int(e.get("features", cfg.embed_features))
    cfg.embed_depth = int(e.get("depth", cfg.embed_depth))
    cfg.embed_kernel = int(e.get("kernel", cfg.embed_kernel))
    cfg.embed_bn = bool(e.get("bn", cfg.embed_bn))
    cfg.embed_out = int(e.get("nplanes_out", cfg.embed_out))
    t = a.get("nl_temp") or {}
    cfg.external_temp = bool(t.get("external_temp", cfg.external_temp))
    cfg.temp_bias = float(t.get("temp_bias", cfg.temp_bias))
    cfg.distance_bn = bool(t.get("distance_bn", cfg.distance_bn))
    if "temp_avgpool" in t:
        cfg.temp_avgpool = bool(t["temp_avgpool"])
    sigma = a.get("sigma")
    return cfg, sigma


# --------------------------------------------------------------------------- #
# Building blocks
# --------------------------------------------------------------------------- #

def _conv(cin: int, cout: int, kernel: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=bias)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class DnCNN(nn.Module):
    """conv1(bias)+relu -> [conv, bn, relu]*(depth-2) -> conv2(bias) -> residual."""

    def __init__(self, cin: int, cout: int, depth: int, features: int, kernel: int, bn: bool):
        super().__init__()
        self.cin, self.cout = cin, cout
        self.conv1 = _conv(cin, features, kernel, bias=True)
        if bn:
            # Present in the checkpoints; intentionally NEVER applied (spec 3).
            self.bn1 = _bn(features)
        layers: List[nn.Module] = []
        for _ in range(depth - 2):
            layers += [_conv(features, features, kernel, bias=not bn),
                       _bn(features) if bn else nn.Identity(),
                       nn.ReLU()]
        self.layer1 = nn.Sequential(*layers)
        self.conv2 = _conv(features, cout, kernel, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv1(x))
        y = self.layer1(y)
        y = self.conv2(y)
        r = min(self.cin, self.cout)
        if r == self.cout:
            return y + x[:, :r]
        return torch.cat([y[:, :r] + x[:, :r], y[:, r:]], dim=1)


def _embed_cnn(cin: int, cout: int, depth: int, features: int, kernel: int, bn: bool) -> nn.Sequential:
    layers: List[nn.Module] = []
    c = cin
    for _ in range(depth - 1):
        layers += [_conv(c, features, kernel, bias=not bn),
                   _bn(features) if bn else nn.Identity(),
                   nn.ReLU()]
        c = features
    layers.append(_conv(c, cout, kernel, bias=True))
    return nn.Sequential(*layers)


def log1mexp(u: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(u)) for u <= 0, stable, with ONNX-standard ops only.

    u < ln 0.5: log(1 - exp(u)) (this is log1p(-exp(u)); 1 - exp(u) >= 0.5, so
    the absolute error is a few ulp of 1).
    u >= ln 0.5: log(-expm1(u)), with -expm1(u) = -u * sum_{n>=0} u^n/(n+1)!
    evaluated as an 11-term Horner polynomial (truncation < 4e-11 relative
    on [ln 0.5, 0]) since ONNX has no Expm1.
    """
    a = torch.clamp(u, max=LN_HALF)
    r_small = torch.log(1.0 - torch.exp(a))
    b = torch.clamp(u, min=LN_HALF, max=0.0)
    # P(b) = sum_{n=0}^{10} b^n / (n+1)!
    coeffs = [1.0 / math.factorial(n + 1) for n in range(11)]
    poly = b * coeffs[-1] + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        poly = poly * b + c
    r_big = torch.log(-b * poly)
    return torch.where(u < LN_HALF, r_small, r_big)


# Training caps the gradient of log1mexp(u), -1/u as u -> 0, at this u.
LOG1MEXP_GRAD_CAP_U = -1e-6


def log1mexp_capped_grad(u: torch.Tensor) -> torch.Tensor:
    """The values of ``log1mexp(u)`` with the gradient of ``log1mexp(min(u, -1e-6))``.

    When a softmax weight rounds to (nearly) 1, ``u = log w`` is 0 or tiny and
    the exact gradient -1/u overflows (NaN through the log's backward), which
    sends a training run to NaN within iterations.  The values, and so the
    forward pass, are exactly ``log1mexp(u)``'s.
    """
    capped = log1mexp(torch.clamp(u, max=LOG1MEXP_GRAD_CAP_U))
    return log1mexp(u.detach()) + (capped - capped.detach())


def relaxed_knn_weights(logits: torch.Tensor, k: int, capped_grad: bool = False) -> torch.Tensor:
    """Continuous kNN weights (spec 1) from temperature-scaled logits.

    logits: [..., M] (already divided by the temperature).  Returns [..., k, M].
    ``capped_grad`` (training): the same values, with the gradient of
    ``log(1 - w)`` capped where ``w`` is 1 (see ``log1mexp_capped_grad``).
    """
    ws = []
    l = logits
    step = log1mexp_capped_grad if capped_grad else log1mexp
    for j in range(k):
        logw = F.log_softmax(l, dim=-1)
        ws.append(torch.exp(logw))
        if j + 1 < k:
            l = l + step(logw)
    return torch.stack(ws, dim=-2)


class _Plan:
    """Size-dependent constants of one N3 block for an (H, W) input."""

    def __init__(self, H: int, W: int, p: int, s: int, window: int, chunk: Optional[int]):
        if H < p or W < p:
            raise ValueError(f"image {H}x{W} is smaller than the patch size {p}")
        pvh = (-(H - p)) % s
        pvw = (-(W - p)) % s
        self.top, self.left = pvh // 2, pvw // 2
        self.bottom, self.right = pvh - self.top, pvw - self.left
        self.H, self.W = H, W
        self.Hp, self.Wp = H + pvh, W + pvw
        self.n1 = (self.Hp - p) // s + 1
        self.n2 = (self.Wp - p) // s + 1
        self.N = self.n1 * self.n2
        w1, w2 = min(window, self.n1), min(window, self.n2)
        self.M = w1 * w2 - 1
        if self.M < 1:
            raise ValueError(f"image {H}x{W} gives a 1x1 patch grid: no candidates")
        half = window // 2
        i = torch.arange(self.n1)
        j = torch.arange(self.n2)
        ch = torch.clamp(i - half, 0, self.n1 - w1)  # [n1]
        cw = torch.clamp(j - half, 0, self.n2 - w2)  # [n2]
        rows = ch[:, None] + torch.arange(w1)[None, :]  # [n1, w1]
        cols = cw[:, None] + torch.arange(w2)[None, :]  # [n2, w2]
        cand = rows[:, None, :, None] * self.n2 + cols[None, :, None, :]  # [n1, n2, w1, w2]
        cand = cand.reshape(self.N, w1 * w2)
        q = torch.arange(self.N)[:, None]
        keep = cand != q
        assert bool((keep.sum(1) == self.M).all())
        self.idx = cand[keep].reshape(self.N, self.M).contiguous()  # int64 [N, M]
        # one-hot kernel: output channel t picks pixel (t // p, t % p) of the patch
        self.onehot = torch.eye(p * p, dtype=torch.float32).reshape(p * p, 1, p, p)
        ones = torch.ones(1, p * p, self.n1, self.n2)
        self.fold_count = F.conv_transpose2d(ones, self.onehot, stride=s)  # [1, 1, Hp, Wp]
        assert self.fold_count.shape[-2:] == (self.Hp, self.Wp)
        assert float(self.fold_count.min()) >= 1.0
        if chunk is None or chunk <= 0 or chunk >= self.N:
            self.chunks = [(0, self.N)]
        else:
            self.chunks = [(a, min(a + chunk, self.N)) for a in range(0, self.N, chunk)]
        self.idx_chunks = [self.idx[a:b].reshape(-1).contiguous() for a, b in self.chunks]

    def to(self, device: torch.device) -> "_Plan":
        """Moves the index and kernel tensors to ``device`` (in place)."""
        self.idx = self.idx.to(device)
        self.onehot = self.onehot.to(device)
        self.fold_count = self.fold_count.to(device)
        self.idx_chunks = [c.to(device) for c in self.idx_chunks]
        return self


class _NNN(nn.Module):
    def __init__(self, distance_bn: bool):
        super().__init__()
        if distance_bn:
            self.bn = nn.BatchNorm1d(1, eps=BN_EPS)


class _Aggregation(nn.Module):
    def __init__(self, distance_bn: bool):
        super().__init__()
        self.nnn = _NNN(distance_bn)


class _N3Aggregation(nn.Module):
    def __init__(self, distance_bn: bool):
        super().__init__()
        self.aggregation = _Aggregation(distance_bn)


class N3Block(nn.Module):
    def __init__(self, cfg: N3NetConfig):
        super().__init__()
        c = cfg.interm_channels
        self.k = cfg.k
        self.p = cfg.patch_size
        self.s = cfg.patch_stride
        self.window = cfg.window
        self.log_temp_bias = math.log(cfg.temp_bias)
        self.temp_avgpool = cfg.temp_avgpool
        self.distance_bn = cfg.distance_bn
        self.embedcnn = _embed_cnn(c, cfg.embed_out, cfg.embed_depth, cfg.embed_features,
                                   cfg.embed_kernel, cfg.embed_bn)
        self.tempcnn = _embed_cnn(c, 1, cfg.embed_depth, cfg.embed_features,
                                  cfg.embed_kernel, cfg.embed_bn)
        self.n3aggregation = _N3Aggregation(cfg.distance_bn)
        self.chunk: Optional[int] = None
        self._plans: Dict[Tuple[int, int, Optional[int], str], _Plan] = {}

    def plan(self, H: int, W: int, device: torch.device = torch.device("cpu")) -> _Plan:
        key = (H, W, self.chunk, str(device))
        if key not in self._plans:
            self._plans[key] = _Plan(H, W, self.p, self.s, self.window, self.chunk).to(device)
        return self._plans[key]

    def _unfold(self, t: torch.Tensor, P: _Plan) -> torch.Tensor:
        """[1, C, Hp, Wp] -> [N, C*p*p] (channel-major, then row-major pixel)."""
        c = t.shape[1]
        u = F.conv2d(t.reshape(c, 1, P.Hp, P.Wp), P.onehot.to(t.dtype), stride=self.s)
        return u.reshape(c * self.p * self.p, P.N).transpose(0, 1)

    def _log_temperature(self, ltp: torch.Tensor, P: _Plan, shape: Tuple[int, ...]) -> torch.Tensor:
        """Padded temperature map [B, 1, Hp, Wp] -> log temperature per patch, reshaped to ``shape``."""
        if self.temp_avgpool:
            lt_patch = F.avg_pool2d(ltp, kernel_size=self.p, stride=self.s)
        else:
            c0 = self.p // 2
            lt_patch = ltp[:, :, c0::self.s, c0::self.s][:, :, :P.n1, :P.n2]
        return lt_patch.reshape(shape) + self.log_temp_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.forward_dense(x)
        if x.shape[0] != 1:
            return torch.cat([self.forward(x[b:b + 1]) for b in range(x.shape[0])], dim=0)
        _, C, H, W = x.shape
        P = self.plan(int(H), int(W), x.device)
        p2 = self.p * self.p
        xe = self.embedcnn(x)
        lt = self.tempcnn(x)
        pad = (P.left, P.right, P.top, P.bottom)
        xp = F.pad(x, pad)
        xep = F.pad(xe, pad)
        ltp = F.pad(lt, pad)

        Xq = self._unfold(xp, P)    # [N, C*p2]
        Eq = self._unfold(xep, P)   # [N, E*p2]
        temp = torch.exp(self._log_temperature(ltp, P, (P.N,)))     # [N]

        D = Eq.shape[1]
        Dx = Xq.shape[1]
        zs = []
        for (a, b), idx in zip(P.chunks, P.idx_chunks):
            n = b - a
            q = Eq[a:b] if (a, b) != (0, P.N) else Eq
            cand = torch.index_select(Eq, 0, idx).reshape(n, P.M, D)
            diff = cand - q.unsqueeze(1)
            alpha = -(diff * diff).sum(dim=-1)                         # [n, M]
            if self.distance_bn:
                alpha = self.n3aggregation.aggregation.nnn.bn(alpha.unsqueeze(1)).squeeze(1)
            t = temp[a:b] if (a, b) != (0, P.N) else temp
            logits = alpha / t.unsqueeze(1)
            w = relaxed_knn_weights(logits, self.k)                    # [n, k, M]
            xc = torch.index_select(Xq, 0, idx).reshape(n, P.M, Dx)    # [n, M, C*p2]
            zs.append(torch.matmul(w, xc))                             # [n, k, C*p2]
        z = zs[0] if len(zs) == 1 else torch.cat(zs, dim=0)            # [N, k, C*p2]
        z = z.permute(1, 2, 0).reshape(self.k * C, p2, P.n1, P.n2)
        folded = F.conv_transpose2d(z, P.onehot.to(x.dtype), stride=self.s)  # [k*C, 1, Hp, Wp]
        folded = folded / P.fold_count.to(x.dtype)
        folded = folded[:, :, P.top:P.top + P.H, P.left:P.left + P.W]
        zmap = folded.reshape(1, self.k * C, P.H, P.W)
        return torch.cat([x, zmap - x.repeat(1, self.k, 1, 1)], dim=1)

    def forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        """The same function for a batch of small crops, as dense matrix products (training).

        Distances come from the Gram matrix of all patch pairs
        (|a|^2 + |b|^2 - 2 a.b, clamped at 0), and the aggregation multiplies a
        dense [k*N, N] weight matrix (zero outside each window) with the patches.
        Cost grows with N^2, so this is for training crops, not for whole images;
        its rounding differs from ``forward`` (which the export and the core follow).
        """
        B, C, H, W = x.shape
        P = self.plan(int(H), int(W), x.device)
        p2, N, M, k = self.p * self.p, P.N, P.M, self.k
        pad = (P.left, P.right, P.top, P.bottom)
        xe = self.embedcnn(x)
        temp = torch.exp(self._log_temperature(F.pad(self.tempcnn(x), pad), P, (B, N)))  # [B, N]

        def unfold(t: torch.Tensor) -> torch.Tensor:  # [B, c, Hp, Wp] -> [B, N, c*p2]
            c = t.shape[1]
            u = F.conv2d(t.reshape(B * c, 1, P.Hp, P.Wp), P.onehot.to(t.dtype), stride=self.s)
            return u.reshape(B, c * p2, N).transpose(1, 2)

        Xq = unfold(F.pad(x, pad))
        Eq = unfold(F.pad(xe, pad))
        sq = (Eq * Eq).sum(-1)                                               # [B, N]
        d = (sq.unsqueeze(2) + sq.unsqueeze(1) - 2.0 * torch.bmm(Eq, Eq.transpose(1, 2))).clamp(min=0.0)
        idx = P.idx
        alpha = -torch.gather(d, 2, idx.unsqueeze(0).expand(B, N, M))       # [B, N, M]
        if self.distance_bn:
            alpha = self.n3aggregation.aggregation.nnn.bn(alpha.reshape(B * N, 1, M)).reshape(B, N, M)
        w = relaxed_knn_weights(alpha / temp.unsqueeze(2), k, capped_grad=True)  # [B, N, k, M]
        dense = torch.zeros(B, N, k, N, device=x.device, dtype=x.dtype).scatter(
            3, idx.view(1, N, 1, M).expand(B, N, k, M), w)
        z = torch.bmm(dense.reshape(B, N * k, N), Xq)                        # [B, N*k, C*p2]
        z = z.reshape(B, N, k * C, p2).permute(0, 2, 3, 1).reshape(B * k * C, p2, P.n1, P.n2)
        folded = F.conv_transpose2d(z, P.onehot.to(x.dtype), stride=self.s)
        folded = folded / P.fold_count.to(x.dtype)
        zmap = folded[:, :, P.top:P.top + H, P.left:P.left + W].reshape(B, k * C, H, W)
        return torch.cat([x, zmap - x.repeat(1, k, 1, 1)], dim=1)


class N3Net(nn.Module):
    def __init__(self, cfg: N3NetConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        B = cfg.n3_blocks
        blocks = []
        for i in range(B + 1):
            cin = cfg.in_channels if i == 0 else cfg.n3_out_channels
            cout = cfg.out_channels if i == B else cfg.interm_channels
            blocks.append(DnCNN(cin, cout, cfg.dncnn_depth, cfg.dncnn_features,
                                cfg.dncnn_kernel, cfg.dncnn_bn))
        self.blocks = nn.ModuleList(blocks)
        self.nls = nn.ModuleList([N3Block(cfg) for _ in range(B)])

    def set_chunk(self, chunk: Optional[int]) -> None:
        """Process at most `chunk` query patches at a time (None: all at once)."""
        for nl in self.nls:
            nl.chunk = chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks[0](x)
        for i, nl in enumerate(self.nls):
            y = nl(y)
            y = self.blocks[i + 1](y)
        return y


def infer_io_channels(state_dict: Dict[str, torch.Tensor]) -> Tuple[int, int, int]:
    """(in_channels, out_channels, n3_blocks) from a state dict."""
    nb = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    cin = int(state_dict["blocks.0.conv1.weight"].shape[1])
    cout = int(state_dict[f"blocks.{nb - 1}.conv2.weight"].shape[0])
    return cin, cout, nb - 1


def load_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], Optional[Dict]]:
    """(state dict, saved configuration or None).  The authors' checkpoints hold
    the state dict under ``net``; the project's ``train.py`` adds the
    configuration under ``config``."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    config = ck.get("config") if isinstance(ck, dict) else None
    if isinstance(ck, dict) and "net" in ck:
        ck = ck["net"]
    return {k: v for k, v in ck.items()}, config
