"""The ``graph`` and ``apls`` commands: road graphs from masks written earlier, and APLS between
any two road networks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from sam2ms.console import JSON_HELP, emit
from sam2ms.errors import UsageError

from .extract import BLOCK


def graph_command(
    raster: Path = typer.Argument(
        ..., metavar="MASK_OR_PROB", help="A mask or probability raster written by sam2ms-infer."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="OUT.geojson or OUT.graphml."),
    threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="Road where value / 255 >= this."),
    block: int = typer.Option(
        BLOCK,
        min=256,
        help="Thin and trace the raster this many pixels at a time (memory follows the block, not the scene).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Build the road graph (junctions, ends, edges with lengths in metres) of a mask or probability map."""
    from .extract import mask_raster_graph
    from .io import GRAPH_SUFFIXES, write_graph

    if output.suffix.lower() not in GRAPH_SUFFIXES:
        raise UsageError(f"-o {output}: name it .geojson or .graphml")
    graph, crs = mask_raster_graph(raster, threshold, block)
    if crs is None:
        typer.echo(
            f"warning: {raster} has no georeference: lengths are in pixels (1 px counted as 1 m) and the "
            "graph in pixel coordinates; graph a GeoTIFF mask (sam2ms-infer --format tif) for metres",
            err=True,
        )
    write_graph(graph, output, crs)
    lengths = [d["length"] for _, _, d in graph.edges(data=True)]
    emit(
        {
            "input": str(raster),
            "output": str(output),
            "nodes": graph.number_of_nodes(),
            "edges": graph.number_of_edges(),
            "length_m": round(float(np.sum(lengths)), 1),
            "units": "metres" if crs is not None else "pixels",
            "crs": str(crs) if crs else None,
        },
        as_json,
    )


def apls_command(
    truth: Path = typer.Argument(..., metavar="TRUTH", help="GeoJSON (LineStrings) or GraphML."),
    proposal: Path = typer.Argument(..., metavar="PROPOSAL", help="GeoJSON (LineStrings) or GraphML."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Score a road network against the truth as SpaceNet does: APLS (both directions) and TOPO."""
    from .io import metric_crs, read_graph, to_metric
    from .score import graph_scores

    gt, gt_crs = read_graph(truth)
    prop, prop_crs = read_graph(proposal)
    if (gt_crs is None) != (prop_crs is None):
        raise UsageError(
            f"{truth if gt_crs is None else proposal}: no CRS while the other network has one; "
            "write both georeferenced (or both in pixels)"
        )
    if gt_crs is not None:
        target = metric_crs(gt, gt_crs)
        gt, prop = to_metric(gt, gt_crs, target), to_metric(prop, prop_crs, target)
    score = graph_scores(gt, prop)
    emit(
        {"truth": str(truth), "proposal": str(proposal), **score},
        as_json,
        [
            ("APLS", f"{score['apls']:.4f}"),
            ("gt onto proposal", f"{score['apls_gt_onto_prop']:.4f}"),
            ("proposal onto gt", f"{score['apls_prop_onto_gt']:.4f}"),
            (
                "TOPO precision / recall / F1",
                f"{score['topo_precision']:.4f} / {score['topo_recall']:.4f} / {score['topo_f1']:.4f}",
            ),
        ],
    )
