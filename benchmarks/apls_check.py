"""Our APLS and TOPO (sam2ms.roads.apls, .topo) against CosmiQ's reference on the same graphs
(TOPO from the same origins), scores and time.

    python benchmarks/apls_check.py --reference-python /tmp/aplsref/bin/python \
        --reference-src DIR_WITH_apls.py [--out cases.json]

The reference needs a scratch environment (``python -m venv /tmp/aplsref && /tmp/aplsref/bin/pip
install networkx shapely scipy numpy utm matplotlib pandas``) and its ``apls/apls.py`` (github
CosmiQ/apls). Prints one JSON object: per case both scores, the difference and both times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from sam2ms.roads.apls import apls
from sam2ms.roads.synthetic import apls_reference_cases, street_grid, synthetic_scene_case
from sam2ms.roads.topo import TopoParams, draw_origins, topo


def _cases() -> dict:
    """The cases of tests/roads/test_apls.py, one large graph (no midpoints, sampled rule) and an
    extracted graph against its scene's truth.
    """
    return {
        **apls_reference_cases(),
        "large_grid_625": (street_grid(25, 60), street_grid(25, 60, shift=(1.0, 1.0), drop={(30, 31)})),
        "synthetic_scene_1024": synthetic_scene_case(1024, seed=1),
    }


def _as_json(graph: Any) -> dict:
    return {
        "nodes": {str(n): [d["x"], d["y"]] for n, d in graph.nodes(data=True)},
        "edges": [[u, v, d["geometry"].tolist()] for u, v, d in graph.edges(data=True)],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference-python", required=True)
    p.add_argument("--reference-src", required=True, help="folder holding the reference's apls.py")
    p.add_argument("--out", type=Path, default=Path("/tmp/apls_cases.json"))
    args = p.parse_args()
    cases = _cases()
    origins = {name: [int(n) for n in draw_origins(t, TopoParams())] for name, (t, _) in cases.items()}
    args.out.write_text(
        json.dumps(
            {
                name: {"truth": _as_json(t), "proposal": _as_json(p), "topo_origins": origins[name]}
                for name, (t, p) in cases.items()
            }
        )
    )
    ref = json.loads(
        subprocess.run(
            [
                args.reference_python,
                str(Path(__file__).with_name("apls_reference_runner.py")),
                str(args.out),
                args.reference_src,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    result = {}
    keys = ("apls", "apls_gt_onto_prop", "apls_prop_onto_gt")
    for name, (truth, proposal) in cases.items():
        t0 = time.perf_counter()
        ours = apls(truth, proposal)
        seconds = time.perf_counter() - t0
        result[name] = {
            "nodes": truth.number_of_nodes(),
            **{f"ours_{k}": round(ours[k], 6) for k in keys},
            **{f"ref_{k}": round(ref[name][k], 6) for k in keys},
            "abs_diff": round(abs(ours["apls"] - ref[name]["apls"]), 6),
            "ours_s": round(seconds, 3),
            "ref_s": round(ref[name]["seconds"], 3),
        }
        t0 = time.perf_counter()
        ours_topo = topo(truth, proposal, origins=origins[name])
        seconds = time.perf_counter() - t0
        for k in ("topo_precision", "topo_recall", "topo_f1", "topo_tp", "topo_fp", "topo_fn"):
            result[name][f"ours_{k}"], result[name][f"ref_{k}"] = round(ours_topo[k], 6), round(ref[name][k], 6)
        result[name].update(topo_ours_s=round(seconds, 3), topo_ref_s=round(ref[name]["topo_seconds"], 3))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
