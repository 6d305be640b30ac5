"""Input that used to crash, hang or be misread silently: YAML aliases and tags, NUL bytes late in
a file, huge numbers, things that are not files, unreadable directories, ConfigMap volumes.

Each is bad input like any other: a located problem (FILE:LINE), exit code 65, no traceback,
and never a hang or an "all valid" verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from privileges import bound_by_permissions

from meshctl.config.documents import parse_text
from meshctl.config.loader import load, load_file
from meshctl.demo.mesh import routing_yaml

VIRTUAL_SERVICE = routing_yaml()  # the reviews VirtualService, its last route at the end

# An alias bomb like the (575 bytes there): nine levels of nine references, 9^9 = 387
# million strings once expanded.
BOMB = "a: &a [" + ", ".join(['"lollollol"'] * 9) + "]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def _meshctl(*args: str, timeout: float = 30, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)  # type: ignore[call-overload]


def _assert_bad_input(done: subprocess.CompletedProcess[str], located: str) -> None:
    assert done.returncode == 65, done.stderr
    assert located in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_the_alias_bomb_is_refused_in_milliseconds_at_its_line() -> None:
    assert len(BOMB) < 600
    tracemalloc.start()
    started = time.perf_counter()
    try:
        documents, errors = parse_text(BOMB, "bomb.yaml")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not documents
    [error] = errors
    assert str(error).startswith("bomb.yaml:5: YAML aliases expand to more than 10,000 values")
    assert elapsed < 0.5 and peak < 20_000_000, (elapsed, peak)


def test_a_few_aliases_of_shared_blocks_still_work() -> None:
    text = "defaults: &retry {attempts: 3, perTryTimeout: 2s}\nroutes:\n- retries: *retry\n- retries: *retry\n"
    [document], errors = parse_text(text, "f.yaml")
    assert not errors
    assert document.value["routes"] == [{"retries": {"attempts": 3, "perTryTimeout": "2s"}}] * 2
    assert document.lines[("routes", 1, "retries", "attempts")] == 4  # the line of the alias, not the anchor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec:\n  hosts: !!python/object:os.system {}\n",
         "f.yaml:2: spec.hosts: unsupported YAML tag !!python/object:os.system"),
        ("spec:\n  hosts: !!python/tuple [a]\n", "f.yaml:2: spec.hosts: unsupported YAML tag !!python/tuple"),
        ("spec:\n  hosts: !Ref [a]\n", "f.yaml:2: spec.hosts: unsupported YAML tag !Ref"),
        ("spec:\n  hosts: !!set {a}\n", "f.yaml:2: spec.hosts: unsupported YAML tag !!set"),
        ("spec:\n  hosts: !!omap [a: 1]\n", "f.yaml:2: spec.hosts: unsupported YAML tag !!omap"),
        ("spec:\n  name: !custom x\n", "f.yaml:2: spec.name: unsupported YAML tag !custom"),
        ("spec:\n  ? !!python/name:os.system x\n  : y\n", "f.yaml:2: spec: mapping keys must be plain strings"),
    ],
)
def test_yaml_tags_are_refused_not_stripped(text: str, expected: str) -> None:
    documents, errors = parse_text(text, "f.yaml")
    assert [str(error) for error in errors] == [expected]
    assert not documents


def test_standard_tags_keep_their_meaning() -> None:
    [document], errors = parse_text("a: !!str 80\nb: !!int '7'\nc: !!map {x: 1}\nd: !!seq [1]\ne: ! plain\n", "f.yaml")
    assert not errors
    assert document.value == {"a": "80", "b": 7, "c": {"x": 1}, "d": [1], "e": "plain"}


def test_nul_bytes_and_control_characters_are_located_past_the_first_4k(tmp_path: Path) -> None:
    padding = "# a long comment line to push the bad byte well past the first 4 KB\n" * 100
    for bad, message in (("\x00", "not a text file (contains NUL bytes)"),
                         ("\x07", "invalid YAML: control character #x07 is not allowed")):
        path = tmp_path / "late.yaml"
        path.write_text(VIRTUAL_SERVICE + padding + f"# {bad}\n")
        [problem] = load_file(str(path)).problems
        assert str(problem) == f"{path}:{VIRTUAL_SERVICE.count(chr(10)) + 101}: {message}"


def test_a_number_too_long_for_any_field_is_located(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(VIRTUAL_SERVICE.replace("hosts: [reviews]", "hosts: [reviews]\n  weight: " + "9" * 10_000))
    [problem] = load_file(str(path)).problems
    assert str(problem).startswith(f"{path}:7: spec.weight: number '99999")
    assert str(problem).endswith("(10,000 characters) is out of range for any field")


def test_a_million_digit_timeout_is_bad_input_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "timeout.yaml"
    path.write_text(VIRTUAL_SERVICE + "    timeout: " + "9" * 1_000_000 + "s\n")
    done = _meshctl("validate", "-f", str(path))
    line = VIRTUAL_SERVICE.count("\n") + 1
    _assert_bad_input(done, f"{path}:{line}: VirtualService default/reviews: spec.http[1].timeout: duration '9999")
    assert "(1,000,001 characters) is out of range: the longest is 2562047h47m15.999999999s" in done.stderr
    assert len(done.stderr) < 1000


def test_dev_zero_and_a_fifo_are_bad_input_and_never_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    _assert_bad_input(_meshctl("validate", "-f", "/dev/zero", timeout=20),
                      "/dev/zero: is a character device, not a file")
    _assert_bad_input(_meshctl("validate", "-f", str(fifo), timeout=20), f"{fifo}: is a named pipe (FIFO), not a file")
    (tmp_path / "ok.yaml").write_text(VIRTUAL_SERVICE)
    _assert_bad_input(_meshctl("validate", "-f", str(tmp_path), timeout=20), f"{fifo}: is a named pipe (FIFO)")


def test_a_pipe_handed_over_by_the_shell_is_read(tmp_path: Path) -> None:
    """`meshctl validate -f <(helm template ...)`: an open pipe, not a FIFO nobody writes to."""
    done = subprocess.run(["bash", "-c", f'"{sys.executable}" -m meshctl validate -f <(printf "%s" "$VS")'],
                          env={**os.environ, "VS": "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "1 resource(s) valid" in done.stderr, done.stderr


def test_an_unreadable_directory_is_bad_input(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    (mesh / "locked").mkdir(parents=True)
    (mesh / "locked" / "vs.yaml").write_text(VIRTUAL_SERVICE)
    (mesh / "locked").chmod(0)
    try:
        for target, located in ((mesh, f"{mesh}/locked: cannot read directory: Permission denied"),
                                (mesh / "locked", f"{mesh}/locked: cannot read directory: Permission denied")):
            done = _meshctl("validate", "-f", str(target), preexec_fn=bound_by_permissions)
            _assert_bad_input(done, located)
    finally:
        (mesh / "locked").chmod(0o755)


def test_a_configmap_volume_is_read_once(tmp_path: Path) -> None:
    """kubelet's layout: `..data` links to a hidden timestamped directory holding the files, and
    each visible file links into `..data`. Reading the hidden copies too defined everything twice."""
    volume = tmp_path / "volume"
    (volume / "..2024_05_01_10_00_00.123").mkdir(parents=True)
    (volume / "..2024_05_01_10_00_00.123" / "reviews.yaml").write_text(VIRTUAL_SERVICE)
    (volume / "..data").symlink_to("..2024_05_01_10_00_00.123")
    (volume / "reviews.yaml").symlink_to("..data/reviews.yaml")
    result = load([str(volume)])
    assert not result.problems
    assert [(r.key, r.origin.file) for r in result.resources] == [
        (("VirtualService", "default", "reviews"), f"{volume}/reviews.yaml")]
