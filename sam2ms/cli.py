"""The ``sam2ms`` command line (typer).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input, 3 a failed parity/accuracy check.
Every error the user can cause is a :class:`~sam2ms.errors.Sam2msError` and prints as one line.
Heavy imports (torch, sam2) happen inside commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import typer

from . import __version__
from .errors import Sam2msError, Terminated

# Plain click help (rich_markup_mode=None): the rich panels print a "<bool>" type beside every flag.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sam2ms {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """SAM2MS road extraction: train, export (ONNX, FP16, INT8, TensorRT), run tiled inference and
    benchmark against PyTorch.
    """


def _register_commands() -> None:
    """Each command lives beside the code it drives; this module only assembles them."""
    from sam2ms.bench.command import bench_command
    from sam2ms.calib.command import calibrate_command
    from sam2ms.data.command import synth
    from sam2ms.demo import demo_command
    from sam2ms.export.command import export_command
    from sam2ms.geo.mosaic import mosaic_command
    from sam2ms.model_commands import info, models
    from sam2ms.raster_stats import stats_command
    from sam2ms.roads.command import apls_command, graph_command
    from sam2ms.runtime.command import infer_command
    from sam2ms.runtime.triton_repository import triton_command
    from sam2ms.train.command import eval_cmd, train

    for name, command in (
        ("synth", synth),
        ("train", train),
        ("eval", eval_cmd),
        ("info", info),
        ("models", models),
        ("export", export_command),
        ("calibrate", calibrate_command),
        ("infer", infer_command),
        ("triton", triton_command),
        ("bench", bench_command),
        ("demo", demo_command),
        ("stats", stats_command),
        ("mosaic", mosaic_command),
        ("graph", graph_command),
        ("apls", apls_command),
    ):
        app.command(name)(command)


_register_commands()


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def run_app(typer_app: typer.Typer) -> None:
    """Run a typer app and turn known errors into one-line messages and exit codes.

    typer itself reports bad flags (exit 2) and exits; our own errors propagate out of it. Ctrl-C
    and SIGTERM stop the command through the same clean-up (exit 130 / 143). Anything else is a bug
    or an unforeseen failure: one line naming it (exit 1); ``SAM2MS_DEBUG=1`` shows the traceback
    of every error instead.
    """
    debug = os.environ.get("SAM2MS_DEBUG", "") not in ("", "0")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        typer_app()
    except Sam2msError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # click turns Ctrl-C into exit 130 itself; this is the path outside click
        typer.echo("interrupted", err=True)
        sys.exit(128 + signal.SIGINT)
    except Terminated as exc:
        typer.echo(f"terminated by signal {exc.signum}; finished outputs are kept, --resume continues", err=True)
        sys.exit(128 + exc.signum)
    except Exception as exc:  # the last line of defence: never a traceback unless asked
        if debug:
            raise
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        typer.echo(
            f"error: {type(exc).__name__}: {exc}{where}; this is a failure sam2ms did not foresee: run again "
            "with SAM2MS_DEBUG=1 for the traceback and report it",
            err=True,
        )
        sys.exit(1)


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
