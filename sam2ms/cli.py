"""The ``sam2ms`` command line (typer).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input, 3 a failed parity/accuracy check.
Every error the user can cause is a :class:`~sam2ms.errors.Sam2msError` and prints as one line.
Heavy imports (torch, sam2) happen inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from . import __version__
from .errors import Sam2msError

# Plain click help (rich_markup_mode=None): the rich panels print a "<bool>" type beside every flag.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sam2ms {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """SAM2MS road extraction: train, export (ONNX, FP16, INT8, TensorRT), run tiled inference and
    benchmark against PyTorch."""


def _register_commands() -> None:
    """Each command lives beside the code it drives; this module only assembles them."""
    from sam2ms.bench.command import bench_command
    from sam2ms.calib.command import calibrate_command
    from sam2ms.data.command import synth
    from sam2ms.demo import demo_command
    from sam2ms.export.command import export_command
    from sam2ms.model_commands import info, models
    from sam2ms.mosaic import mosaic_command
    from sam2ms.raster_stats import stats_command
    from sam2ms.roads.command import apls_command, graph_command
    from sam2ms.runtime.command import infer_command
    from sam2ms.train.command import eval_cmd, train

    for name, command in (("synth", synth), ("train", train), ("eval", eval_cmd), ("info", info),
                          ("models", models), ("export", export_command), ("calibrate", calibrate_command),
                          ("infer", infer_command), ("bench", bench_command), ("demo", demo_command),
                          ("stats", stats_command), ("mosaic", mosaic_command), ("graph", graph_command),
                          ("apls", apls_command)):
        app.command(name)(command)


_register_commands()


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app and turn known errors into one-line messages and exit codes.

    typer itself reports bad flags (exit 2) and exits; our own errors propagate out of it.
    """
    try:
        typer_app()
    except Sam2msError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


def main() -> None:
    """``sam2ms``."""
    run_app(app)


def _alias(command: Any) -> None:
    alias = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    alias.command()(command)
    run_app(alias)


def export_main() -> None:
    """``sam2ms-export``: the export command alone."""
    from sam2ms.export.command import export_command

    _alias(export_command)


def infer_main() -> None:
    """``sam2ms-infer``: the infer command alone."""
    from sam2ms.runtime.command import infer_command

    _alias(infer_command)

if __name__ == "__main__":
    main()
