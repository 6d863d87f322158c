#!/usr/bin/env python3
"""Speedup chart of the expert-layer benchmark: per shape and token count, our 128:2:8, 2:4 and dense kernels and the
PyTorch peers as speedups over torch._grouped_mm (1.0 = the peer), from ExpertLayerBenchmark's and
bench_expert_layer.py's JSON of one device call. Standard library only; writes an SVG.

  python3 bench/plot_expert_layer.py bench/results/ours-expert-layer.json \
      bench/results/peer-expert-layer.json bench/results/expert-layer.svg
"""
import json
import sys

SERIES = [("128:2:8", "ours 128:2:8 (75% sparse, wgmma.sp)", "#9467bd"), ("2:4", "ours 2:4 (wgmma.sp)", "#d62728"),
          ("dense", "ours dense (tuned)", "#1f77b4"),
          ("cublas_loop", "cuBLAS per-expert loop", "#7f7f7f")]
SHAPES = ["Mixtral-8x7B", "OLMoE-1B-7B", "Qwen1.5-MoE-A2.7B", "Qwen3-30B-A3B"]
BAR, GAP, LEFT, TOP, HEIGHT = 16, 28, 60, 50, 300


def load(ours_file, peer_file):
    ours = json.load(open(ours_file))
    peers = json.load(open(peer_file))
    peers = peers["runs"] if isinstance(peers, dict) else peers
    ms = {(r["shape"], r["tokens"], r["kernel"]): r["median_ms"] for r in ours["runs"] + peers}
    groups = sorted({(r["shape"], r["tokens"]) for r in ours["runs"]}, key=lambda g: (SHAPES.index(g[0]), g[1]))
    speedups = {}
    for g in groups:
        base = ms.get(g + ("grouped_mm",))
        for key, _, _ in SERIES:
            if base and g + (key,) in ms:
                speedups[g + (key,)] = base / ms[g + (key,)]
    return ours.get("device", "GPU"), groups, speedups


def svg(device, groups, speedups):
    top = max(3.0, max(speedups.values()) * 1.1)
    width = LEFT + len(groups) * (len(SERIES) * BAR + GAP) + 20
    y = lambda v: TOP + HEIGHT - v / top * HEIGHT
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{TOP + HEIGHT + 110}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{LEFT}" y="20" font-size="14">Expert layer (routing, gate+up, down) on {device}: '
           'speedup over torch._grouped_mm, same device call</text>']
    tick = 0.0
    while tick <= top:
        out.append(f'<line x1="{LEFT}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}x</text>')
        tick += 0.5
    out.append(f'<line x1="{LEFT}" x2="{width - 10}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#000" '
               'stroke-dasharray="4 3"/>')
    x = LEFT + GAP / 2
    for shape, tokens in groups:
        for i, (key, _, color) in enumerate(SERIES):
            v = speedups.get((shape, tokens, key))
            if v is None:
                continue
            bx = x + i * BAR
            out.append(f'<rect x="{bx:.1f}" y="{y(v):.1f}" width="{BAR - 2}" height="{y(0) - y(v):.1f}" '
                       f'fill="{color}"><title>{shape} {tokens} tokens {key}: {v:.2f}x</title></rect>')
            if key == "2:4":
                out.append(f'<text x="{bx + BAR / 2:.1f}" y="{y(v) - 3:.1f}" text-anchor="middle" '
                           f'font-size="9">{v:.2f}</text>')
        cx = x + len(SERIES) * BAR / 2
        out.append(f'<text x="{cx:.1f}" y="{TOP + HEIGHT + 14}" text-anchor="middle">{tokens}</text>'
                   f'<text x="{cx:.1f}" y="{TOP + HEIGHT + 27}" text-anchor="middle" font-size="9">'
                   f'{shape.split("-")[0]}</text>')
        x += len(SERIES) * BAR + GAP
    for i, (_, label, color) in enumerate(SERIES):
        ly = TOP + HEIGHT + 50 + i * 16
        out.append(f'<rect x="{LEFT}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{LEFT + 16}" y="{ly}">{label}</text>')
    out.append('</svg>')
    return "\n".join(out)


if __name__ == "__main__":
    device, groups, speedups = load(sys.argv[1], sys.argv[2])
    with open(sys.argv[3], "w") as f:
        f.write(svg(device, groups, speedups))
