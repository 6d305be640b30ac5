"""`meshctl serve` as a subprocess for tests: the serve command alone, registered the way
cli/__init__.py registers it, run with meshctl's exit-code handling. Tests pass
`--translator fake_mesh:translate` until the real translator is wired in."""

from __future__ import annotations

import sys

import typer

from meshctl.cli import serve
from meshctl.cli.output import err
from meshctl.errors import MeshctlError


def main() -> int:
    from typer.main import get_command

    app = typer.Typer(add_completion=False)
    serve.register(app)
    try:
        return get_command(app).main(args=sys.argv[1:], prog_name="meshctl serve", standalone_mode=False)
    except MeshctlError as exc:
        err(f"error: {exc}")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
