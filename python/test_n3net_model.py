"""Self-tests of n3net_model.py against a direct, loop-based reading of the spec.

Run: ``python3 python/test_n3net_model.py`` (or with pytest).  CPU, a few seconds.
"""

from __future__ import annotations

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from n3net_model import N3Net, N3NetConfig, log1mexp, log1mexp_capped_grad, relaxed_knn_weights  # noqa: E402


def _randomize_bn(model: torch.nn.Module, gen: torch.Generator) -> None:
    for mod in model.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
            mod.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            mod.weight.data.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
            mod.bias.data.copy_(0.1 * torch.randn(c, generator=gen))


def reference_n3_block(block, x: torch.Tensor) -> torch.Tensor:
    """Spec section 4, literally, in float64, one query at a time."""
    x = x.double()
    blk = block.double()
    p, s, k, win = blk.p, blk.s, blk.k, blk.window
    _, C, H, W = x.shape
    xe = blk.embedcnn(x)
    lt = blk.tempcnn(x)
    pvh, pvw = (-(H - p)) % s, (-(W - p)) % s
    top, left = pvh // 2, pvw // 2
    pad = (left, pvw - left, top, pvh - top)
    xp, xep, ltp = F.pad(x, pad), F.pad(xe, pad), F.pad(lt, pad)
    Hp, Wp = H + pvh, W + pvw
    n1, n2 = (Hp - p) // s + 1, (Wp - p) // s + 1
    w1, w2 = min(win, n1), min(win, n2)

    def patch(t, i, j):
        return t[0, :, i * s:i * s + p, j * s:j * s + p]

    acc = torch.zeros(k, C, Hp, Wp, dtype=torch.float64)
    cnt = torch.zeros(Hp, Wp, dtype=torch.float64)
    for i in range(n1):
        ch = min(max(i - win // 2, 0), n1 - w1)
        for j in range(n2):
            cw = min(max(j - win // 2, 0), n2 - w2)
            cands = [(a, b) for a in range(ch, ch + w1) for b in range(cw, cw + w2) if (a, b) != (i, j)]
            q = patch(xep, i, j)
            alpha = torch.stack([-((patch(xep, a, b) - q) ** 2).sum() for a, b in cands])
            if blk.distance_bn:
                bn = blk.n3aggregation.aggregation.nnn.bn
                alpha = (alpha - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            if blk.temp_avgpool:
                lt_q = patch(ltp, i, j).mean()
            else:
                lt_q = ltp[0, 0, i * s + p // 2, j * s + p // 2]
            t = torch.exp(lt_q + math.log(math.exp(blk.log_temp_bias)))
            l = alpha / t
            xs = torch.stack([patch(xp, a, b) for a, b in cands])  # [M, C, p, p]
            for jj in range(k):
                w = torch.softmax(l, 0)
                acc[jj, :, i * s:i * s + p, j * s:j * s + p] += (w[:, None, None, None] * xs).sum(0)
                logw = torch.log_softmax(l, 0)
                l = l + torch.where(logw < math.log(0.5), torch.log1p(-torch.exp(logw)),
                                    torch.log(-torch.expm1(logw)))
            cnt[i * s:i * s + p, j * s:j * s + p] += 1
    z = (acc / cnt)[:, :, top:top + H, left:left + W]  # [k, C, H, W]
    out = [x] + [z[jj:jj + 1] - x for jj in range(k)]
    block.float()
    return torch.cat(out, 1).float()


def _small_cfg(**kw) -> N3NetConfig:
    cfg = N3NetConfig(in_channels=1, out_channels=1, n3_blocks=2, interm_channels=4,
                      dncnn_depth=3, dncnn_features=8, embed_depth=3, embed_features=8,
                      embed_out=3, k=3, patch_size=6, patch_stride=4, window=5, temp_bias=0.5)
    for a, b in kw.items():
        setattr(cfg, a, b)
    return cfg


def test_log1mexp():
    u = -torch.cat([torch.logspace(-7, 2, 2000, dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)])
    ref = torch.where(u < math.log(0.5), torch.log1p(-torch.exp(u)), torch.log(-torch.expm1(u)))
    got = log1mexp(u.float()).double()
    fin = torch.isfinite(ref)
    assert torch.equal(fin, torch.isfinite(got))
    rel = ((got[fin] - ref[fin]).abs() / ref[fin].abs().clamp(min=1e-30))
    absd = (got[fin] - ref[fin]).abs()
    assert float(torch.minimum(rel, absd).max()) < 1e-6, float(torch.minimum(rel, absd).max())
    # w -> 1: stays finite where the naive form is -inf
    u1 = torch.tensor([-1e-8, -1e-6, -1e-4])
    assert torch.isfinite(log1mexp(u1)).all()
    assert torch.isinf(torch.log(1 - torch.exp(u1[:1]))).all()


def test_hard_knn_limit():
    """t -> 0: the j-th weight vector is one-hot on the j-th nearest candidate."""
    g = torch.Generator().manual_seed(1)
    d = torch.rand(5, 30, generator=g) * 10
    t = 1e-3
    w = relaxed_knn_weights(-d / t, 4)  # [5, 4, 30]
    order = torch.argsort(d, dim=1)[:, :4]
    onehot = F.one_hot(order, 30).float()
    assert float((w - onehot).abs().max()) < 1e-6
    # and the weights of each neighbour sum to 1 in general
    w2 = relaxed_knn_weights(torch.randn(3, 17, generator=g) * 3, 5)
    assert float((w2.sum(-1) - 1).abs().max()) < 1e-5


def _block_case(cfg: N3NetConfig, H: int, W: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = N3Net(cfg).eval()
    with torch.no_grad():
        _randomize_bn(net, g)
        blk = net.nls[0]
        x = torch.randn(1, cfg.interm_channels, H, W, generator=g)
        got = blk(x)
        blk.chunk = 7
        got_chunked = blk(x)
        blk.chunk = None
        ref = reference_n3_block(blk, x)
    assert got.shape == (1, cfg.interm_channels * (cfg.k + 1), H, W)
    e1 = float((got - ref).abs().max())
    e2 = float((got_chunked - got).abs().max())
    assert e1 < 1e-4, (cfg, H, W, e1)
    assert e2 < 1e-5, e2
    return e1


def test_n3_block_vs_reference():
    errs = []
    errs.append(_block_case(_small_cfg(), 39, 49))                    # padded both axes, window shifts
    errs.append(_block_case(_small_cfg(window=15), 23, 30, seed=1))    # window clamps to the grid
    errs.append(_block_case(_small_cfg(distance_bn=False, temp_avgpool=False, patch_stride=3), 20, 17, seed=2))
    errs.append(_block_case(_small_cfg(window=4, embed_bn=False, embed_depth=2), 30, 26, seed=3))
    print("n3 block vs float64 reference, max abs:", ["%.2e" % e for e in errs])


def test_dense_training_path_matches():
    """forward_dense (batched, Gram-matrix distances) computes the same block as forward."""
    for seed, (cfg, H, W) in enumerate([(_small_cfg(), 39, 49), (_small_cfg(window=15), 23, 30),
                                        (_small_cfg(distance_bn=False, patch_stride=3), 20, 17)]):
        torch.manual_seed(seed)
        net = N3Net(cfg).eval()
        with torch.no_grad():
            _randomize_bn(net, torch.Generator().manual_seed(seed))
        blk = net.nls[0]
        x = torch.rand(3, cfg.interm_channels, H, W)
        with torch.no_grad():
            dense = blk.forward_dense(x)
            ref = torch.cat([blk(x[b:b + 1]) for b in range(3)], dim=0)
        err = float((dense - ref).abs().max())
        assert err < 1e-4, (seed, err)


def test_dncnn_and_shapes():
    cfg = _small_cfg(in_channels=2, dncnn_bn=False)
    net = N3Net(cfg).eval()
    x = torch.rand(1, 2, 24, 28)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 1, 24, 28)
    names = set(net.state_dict())
    assert "blocks.0.layer1.0.bias" in names and "blocks.0.bn1.weight" not in names
    net0 = N3Net(_small_cfg(n3_blocks=0, out_channels=3)).eval()
    assert net0(torch.rand(1, 1, 8, 9)).shape == (1, 3, 8, 9)
    try:
        N3Net(_small_cfg(external_temp=False))
    except NotImplementedError:
        pass
    else:
        raise AssertionError("external_temp=False must raise")


def test_training_gradient_is_finite_when_a_weight_rounds_to_one():
    # u = log w just below 0 (w rounds to 1): log(1 - w)'s exact gradient
    # -1/u overflows into NaN, which stopped a GPU training run.
    u = torch.tensor([-1e-40, -1e-30, 0.0, -1e-3, -0.5, -3.0, -math.inf], requires_grad=True)
    log1mexp(u).sum().backward()
    assert not torch.isfinite(u.grad).all(), "the exact gradient was expected to overflow"
    v = u.detach().clone().requires_grad_(True)
    y = log1mexp_capped_grad(v)
    y.sum().backward()
    assert torch.isfinite(v.grad).all(), v.grad
    assert torch.equal(y.detach(), log1mexp(u.detach())), "values must not change"
    assert torch.equal(v.grad[3:], u.grad[3:]), "the gradient is exact below the cap"
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 30
    assert torch.equal(relaxed_knn_weights(logits, 5, capped_grad=True), relaxed_knn_weights(logits, 5))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
