"""`meshctl diff OLD NEW`: what a change of config does to every proxy's Envoy config, the review
step of a GitOps pull request.

OLD and NEW are directories, files, or `REV:PATH` (a path as a git revision holds it); `--git
REV1..REV2 PATH` compares a path between two revisions (`REV1..` with the working tree).

Exit codes, like diff(1): 0 no proxy's config changes, 1 some does, 65 bad input (every problem
as FILE:LINE), 64 usage. Module imports stay cheap (typer and the standard library).
"""

from __future__ import annotations

from typing import Annotated

import typer

from meshctl.cli.options import MeshConfigOption, OutputOption
from meshctl.formats import OutputFormat


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def diff(
    old: Annotated[str | None, typer.Argument(metavar="OLD", show_default=False,
                                              help="Directory, file or REV:PATH before the change.")] = None,
    new: Annotated[str | None, typer.Argument(metavar="NEW", show_default=False,
                                              help="Directory, file or REV:PATH after it.")] = None,
    git: Annotated[str | None, typer.Option("--git", metavar="REV1..REV2", show_default=False,
                                            help="Compare PATH (the one argument) between two git revisions.")] = None,
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="Namespace for resources that name none.")] = "default",
    mesh_config: MeshConfigOption = None,
    output: OutputOption = OutputFormat.short,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="List every proxy of each group.")] = False,
) -> int:
    """Which Envoy resources of which proxies a config change adds, removes or changes.

    Proxies that change alike are grouped; each changed resource lists its field paths with the
    values before and after. Exits 1 when some proxy's config changes, 0 when none does.

    Examples:

    \b
      meshctl diff main-checkout/mesh mesh
      meshctl diff HEAD~1:mesh mesh -o json
      meshctl diff --git origin/main..HEAD mesh
    """
    from meshctl.cli.output import out
    from meshctl.diff import inputs
    from meshctl.diff.compare import diff_meshes
    from meshctl.diff.report import diff_data, diff_text
    from meshctl.errors import ExitCode, UsageError
    from meshctl.formats import structured_text
    from meshctl.model.meshconfig import MeshConfig, read_mesh_config

    if git is not None:
        if old is None or new is not None:
            raise UsageError("--git REV1..REV2 takes one PATH")
        before, after = inputs.git_range(git, old)
    else:
        if old is None or new is None:
            raise UsageError("give OLD and NEW (directories, files or REV:PATH), or --git REV1..REV2 PATH")
        before, after = inputs.side(old), inputs.side(new)
    mesh = read_mesh_config(mesh_config) if mesh_config else MeshConfig()
    old_result, new_result = inputs.load_sides(before, after, namespace)
    result = diff_meshes(old_result, new_result, mesh)
    if output is OutputFormat.short:
        out(diff_text(result, verbose=verbose))
    else:
        out(structured_text(diff_data(result), as_yaml=output is OutputFormat.yaml))
    return ExitCode.ERROR if result.changed else ExitCode.OK
