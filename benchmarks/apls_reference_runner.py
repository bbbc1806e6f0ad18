"""Run CosmiQ's reference APLS and TOPO (``apls/apls.py`` and ``apls/topo_metric.py`` of github
CosmiQ/apls) on the graphs of a cases file. Runs in a scratch environment with networkx, shapely,
scipy, utm, matplotlib and pandas — never in the project's: the reference pins an old GDAL and
imports modules that only its plotting and file handling need, which are stubbed here. Its TOPO
was written for networkx 1.x (``G.node``) and draws its origins unseeded: a shim gives ``G.node``
and the case's ``topo_origins`` replace the draw.

    /tmp/aplsref/bin/python benchmarks/apls_reference_runner.py CASES.json APLS_SOURCE_DIR > ref.json
"""

import contextlib
import json
import os
import sys
import time
import types
from pathlib import Path

import networkx as nx
from shapely.geometry import LineString


def _reference(src: str):
    for name in (
        "apls_plots",
        "osmnx_funcs",
        "graphTools",
        "wkt_to_G",
        "sp_metric",
        "geopandas",
        "rasterio",
        "affine",
        "cv2",
        "skimage",
        "skimage.io",
    ):
        sys.modules[name] = types.ModuleType(name)
    osgeo = sys.modules["osgeo"] = types.ModuleType("osgeo")
    gdal = types.ModuleType("gdal")
    for name in ("gdal", "ogr", "osr"):  # stand-ins that are never called
        setattr(osgeo, name, gdal)
    nx.Graph.node = property(lambda self: self.nodes)  # networkx 1.x, which topo_metric.py uses
    sys.path.insert(0, src)
    import random

    import apls
    import topo_metric

    # make_graphs_yuge calls random.sample on a NodeView, which Python >= 3.11 refuses
    apls.random.sample = lambda population, k: random.Random(0).sample(list(population), k)
    return apls, topo_metric


def _topo(topo_metric, case: dict) -> dict:
    """The reference's TOPO with apls.py's settings, from the case's origins."""
    origins = case["topo_origins"]
    topo_metric.np.random.choice = lambda nodes, n: origins
    tp, fp, fn, precision, recall, f1 = topo_metric.compute_topo(
        _graph(case["truth"]),
        _graph(case["proposal"]),
        subgraph_radius=150,
        interval=30,
        hole_size=4,
        n_measurement_nodes=len(origins),
        allow_multi_hole=False,
        make_plots=False,
        verbose=False,
    )
    return {
        "topo_precision": float(precision),
        "topo_recall": float(recall),
        "topo_f1": float(f1),
        "topo_tp": int(tp),
        "topo_fp": int(fp),
        "topo_fn": int(fn),
    }


def _graph(case: dict) -> nx.MultiGraph:
    g = nx.MultiGraph()
    for n, (x, y) in case["nodes"].items():
        g.add_node(int(n), x=x, y=y)
    for u, v, coords in case["edges"]:
        line = LineString(coords)
        g.add_edge(u, v, geometry=line, length=line.length, inferred_speed_mps=10.0)  # travel time needs a speed
    return g


def main() -> None:
    cases, src = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2]
    apls, topo_metric = _reference(src)
    out = {}
    for name, case in cases.items():
        gt, prop = _graph(case["truth"]), _graph(case["proposal"])
        # disjoint node ids, as sam2ms.roads.apls makes them (the reference skips a control point
        # whose id the other graph already uses)
        prop = nx.relabel_nodes(prop, {n: n + 10_000_000 for n in prop.nodes})
        t0 = time.perf_counter()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the reference prints a lot
            if gt.number_of_nodes() < 500:
                res = apls.make_graphs(
                    gt,
                    prop,
                    weight="length",
                    linestring_delta=50,
                    is_curved_eps=-1,
                    max_snap_dist=4,
                    allow_renaming=True,
                )
            else:
                res = apls.make_graphs_yuge(
                    gt, prop, weight="length", max_nodes=1000, max_snap_dist=4, allow_renaming=True
                )
            total, onto_prop, onto_gt = apls.compute_apls_metric(*res[6:10], res[4], res[5], min_path_length=10)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            topo = _topo(topo_metric, case)
        out[name] = {
            "apls": float(total),
            "apls_gt_onto_prop": float(onto_prop),
            "apls_prop_onto_gt": float(onto_gt),
            "seconds": seconds,
            **topo,
            "topo_seconds": time.perf_counter() - t0,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
