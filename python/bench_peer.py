"""Time one peer engine on the whole N3Net, for scripts/bench-peers.sh.

    python3 python/bench_peer.py --engine ort --onnx model_512.onnx --size 512 --threads 1
    python3 python/bench_peer.py --engine torch --checkpoint n3net_sigma25.t7 --size 512 --threads 2

``ort``: ONNX Runtime (CPU execution provider) on the exported graph, which
must have been exported for ``--size``. ``torch``: PyTorch eager on the
python tool's own model (``n3net_model.N3Net``, inference path, the same
query chunking as the export), with ``torch.set_num_threads``. The input is
a smooth pattern plus noise; the first run is a warm-up, then ``--repeat``
runs are timed. Prints one JSON object (best and median seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["ort", "torch"], required=True)
    ap.add_argument("--onnx", help="exported graph (ort)")
    ap.add_argument("--checkpoint", help="checkpoint (torch)")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    n, t = a.size, a.threads

    if a.engine == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = t
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        if list(inp.shape[2:]) != [n, n]:
            raise SystemExit(f"{a.onnx} was exported for {inp.shape}, not {n}x{n}")
        cin = int(inp.shape[1])
        from export_onnx import N3NetConfig, smooth_test_input  # noqa: E402
        cfg = N3NetConfig(in_channels=cin)
        x = smooth_test_input(cfg, n, n)

        def run():
            sess.run(None, {inp.name: x})
        version = ort.__version__
    else:
        import torch
        torch.set_num_threads(t)
        from export_onnx import auto_chunk, build_model_from_files, smooth_test_input  # noqa: E402
        model, cfg, _, _ = build_model_from_files(a.checkpoint)
        model.eval()
        model.set_chunk(auto_chunk(model, n, n))
        x = torch.from_numpy(smooth_test_input(cfg, n, n))

        def run():
            with torch.no_grad():
                model(x)
        version = torch.__version__

    run()
    secs = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        run()
        secs.append(time.perf_counter() - t0)
    print(json.dumps({"engine": a.engine, "version": version, "size": n, "threads": t,
                      "best_s": min(secs), "median_s": statistics.median(secs), "runs": len(secs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
