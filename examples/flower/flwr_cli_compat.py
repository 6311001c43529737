"""Run the ``flwr`` CLI where typer is older than 0.19.

flwr 1.41's CLI annotates options with ``typing.Literal``, which typer supports from 0.19.0,
but flwr declares ``typer>=0.13``; an environment that also holds amqtt 0.11 (which pins
``typer==0.15.4``) gets a ``flwr`` that stops at start with ``RuntimeError: Type not yet
supported: typing.Literal['default', 'json']``. This teaches that typer the one missing case
(a ``Literal`` becomes a ``click.Choice``, what typer 0.19 does) and runs the CLI. With a
typer that already supports ``Literal`` nothing is patched.

Usage: ``python flwr_cli_compat.py run . qora-local --stream`` (the same arguments as ``flwr``).
"""

from __future__ import annotations

import sys
import typing

import click
import typer.main

_get_click_type = typer.main.get_click_type


def _get_click_type_with_literal(*, annotation, parameter_info):
    if typing.get_origin(annotation) is typing.Literal and parameter_info.click_type is None:
        choices = [str(v) for v in typing.get_args(annotation)]
        return click.Choice(choices, case_sensitive=parameter_info.case_sensitive)
    return _get_click_type(annotation=annotation, parameter_info=parameter_info)


def main() -> int:
    version = tuple(int(p) for p in typer.__version__.split(".")[:2] if p.isdigit())
    if version < (0, 19):
        typer.main.get_click_type = _get_click_type_with_literal
    from flwr.cli.app import app

    sys.argv[0] = "flwr"
    return app()


if __name__ == "__main__":
    sys.exit(main())
