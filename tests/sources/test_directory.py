"""The watched directory source: per-file refusal with the loader's message, last good kept,
recovery, deletion, duplicates, and Istio-style debounce."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from privileges import bound_by_permissions

from meshctl.errors import UsageError
from meshctl.sources.base import Rejection
from meshctl.sources.debounce import END, debounce
from meshctl.sources.directory import DirectorySource


def _service(name: str, port: int = 80) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n"


def _write(path: Path, text: str) -> None:
    """Atomically, as editors do, so the watcher never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _ports(update) -> dict[str, int]:
    return {r.name: r.spec["ports"][0]["port"] for r in update.resources}


def test_bad_file_is_refused_with_the_loader_message(tmp_path: Path) -> None:
    _write(tmp_path / "good.yaml", _service("x"))
    (tmp_path / "nested").mkdir()
    _write(tmp_path / "nested" / "bad.yaml", _service("z", 99999))
    update = DirectorySource(tmp_path).scan()
    assert _ports(update) == {"x": 80}
    [rejection] = update.rejected
    assert rejection.file == str(tmp_path / "nested" / "bad.yaml")
    assert rejection.problems == (f"{tmp_path}/nested/bad.yaml:7: Service default/z: spec.ports[0].port: must be <= 65535, got 99999",)


def test_last_good_version_serves_until_the_file_is_fixed(tmp_path: Path) -> None:
    file = tmp_path / "svc.yaml"
    _write(file, _service("x", 80))
    source = DirectorySource(tmp_path)
    source.scan()
    _write(file, _service("x", 99999))
    refused = source.scan([str(file)])
    assert _ports(refused) == {"x": 80} and refused.rejected[0].file == str(file)
    _write(file, "kind: [unclosed")
    assert _ports(source.scan([str(file)])) == {"x": 80}
    _write(file, _service("x", 81))
    fixed = source.scan([str(file)])
    assert _ports(fixed) == {"x": 81} and not fixed.rejected


def test_deleted_files_are_forgotten(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", _service("a"))
    _write(tmp_path / "bad.yml", _service("b", 0))
    source = DirectorySource(tmp_path)
    first = source.scan()
    assert _ports(first) == {"a": 80} and len(first.rejected) == 1
    (tmp_path / "a.yaml").unlink()
    (tmp_path / "bad.yml").unlink()
    gone = source.scan([])
    assert not gone.resources and not gone.rejected


def test_an_object_defined_in_two_files_is_refused_in_the_second(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", _service("x", 80))
    _write(tmp_path / "b.json", '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {}}')
    update = DirectorySource(tmp_path).scan()
    assert _ports(update) == {"x": 80}
    [rejection] = update.rejected
    assert rejection.file.endswith("b.json") and "defined twice; first definition at" in rejection.problems[0]


def test_hidden_and_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / ".x.yaml.swp").write_text("junk")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "a.yaml").write_text(_service("hidden"))
    (tmp_path / "notes.txt").write_text("not config")
    update = DirectorySource(tmp_path).scan()
    assert not update.resources and not update.rejected


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        DirectorySource(tmp_path / "nope")


async def test_watching_delivers_changes(tmp_path: Path) -> None:
    _write(tmp_path / "svc.yaml", _service("x", 80))
    updates = DirectorySource(tmp_path, debounce_after=0).updates()
    try:
        assert _ports(await anext(updates)) == {"x": 80}
        _write(tmp_path / "svc.yaml", _service("x", 99999))
        refused = await asyncio.wait_for(anext(updates), 5)
        assert _ports(refused) == {"x": 80} and refused.rejected
        _write(tmp_path / "svc.yaml", _service("x", 82))
        assert _ports(await asyncio.wait_for(anext(updates), 5)) == {"x": 82}
        (tmp_path / "svc.yaml").unlink()
        assert not (await asyncio.wait_for(anext(updates), 5)).resources
    finally:
        await updates.aclose()


async def test_watching_debounces_a_burst_into_one_update(tmp_path: Path) -> None:
    updates = DirectorySource(tmp_path, debounce_after=0.3, debounce_max=5).updates()
    try:
        assert not (await anext(updates)).resources
        for name in ("a", "b", "c"):
            _write(tmp_path / f"{name}.yaml", _service(name))
            await asyncio.sleep(0.05)
        written = time.monotonic()
        update = await asyncio.wait_for(anext(updates), 5)
        assert _ports(update) == {"a": 80, "b": 80, "c": 80}
        assert time.monotonic() - written >= 0.25
    finally:
        await updates.aclose()


async def _feed(queue: asyncio.Queue, batches: int, every: float) -> None:
    for index in range(batches):
        queue.put_nowait({index})
        await asyncio.sleep(every)
    await asyncio.sleep(0.4)  # the source ends later; ending flushes what is pending at once
    queue.put_nowait(END)


async def _collect(after: float, ceiling: float, batches: int, every: float) -> list[tuple[float, set]]:
    queue: asyncio.Queue = asyncio.Queue()
    start = time.monotonic()
    feeder = asyncio.create_task(_feed(queue, batches, every))
    out = [(time.monotonic() - start, batch) async for batch in debounce(queue, after, ceiling)]
    await feeder
    return out


async def test_debounce_waits_for_quiet() -> None:
    [(when, batch)] = await _collect(after=0.15, ceiling=5, batches=4, every=0.03)
    assert batch == {0, 1, 2, 3}
    assert when >= 0.09 + 0.15 - 0.02  # the last batch came at ~0.09 s


async def test_debounce_ceiling_bounds_the_delay() -> None:
    out = await _collect(after=0.1, ceiling=0.25, batches=20, every=0.03)
    assert len(out) >= 2
    first_when, first_batch = out[0]
    assert 0.2 <= first_when < 0.45 and 0 in first_batch
    assert set().union(*(b for _, b in out)) == set(range(20))


async def test_zero_debounce_passes_batches_straight_on() -> None:
    out = await _collect(after=0, ceiling=0, batches=3, every=0.05)
    assert [batch for _, batch in out] == [{0}, {1}, {2}]


async def test_a_relative_root_sees_changes_reported_with_absolute_paths(tmp_path, monkeypatch) -> None:
    """watchfiles reports absolute paths; a root given as `mesh` must still match them."""
    import asyncio

    from meshctl.sources.directory import DirectorySource

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mesh").mkdir()
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: %d}]}\n"
    (tmp_path / "mesh" / "a.yaml").write_text(service % 80)
    source = DirectorySource("mesh", debounce_after=0, debounce_max=1)
    updates = source.updates()
    first = await anext(updates)
    assert [r.spec["ports"][0]["port"] for r in first.resources] == [80]
    assert first.resources[0].origin.file == "mesh/a.yaml"
    await asyncio.sleep(0.2)
    (tmp_path / "mesh" / "a.yaml").write_text(service % 81)
    second = await asyncio.wait_for(anext(updates), 5)
    assert [r.spec["ports"][0]["port"] for r in second.resources] == [81]
    await updates.aclose()


def test_a_vanished_root_keeps_the_last_good_config(tmp_path: Path) -> None:
    root = tmp_path / "mesh"
    root.mkdir()
    _write(root / "svc.yaml", _service("x"))
    source = DirectorySource(root)
    source.scan()
    shutil.rmtree(root)
    gone = source.scan([str(root / "svc.yaml")])
    assert _ports(gone) == {"x": 80}
    assert [r.file for r in gone.rejected] == [str(root)]
    assert gone.rejected[0].problems == (
        f"{root}: the config directory is missing; the last good config keeps serving",)
    root.mkdir()
    _write(root / "svc.yaml", _service("x", 81))
    assert _ports(source.scan(new_root=True)) == {"x": 81} and not source.current().rejected


def test_a_replaced_root_is_read_only_once_the_watcher_says_it_settled(tmp_path: Path) -> None:
    """`mkdir DIR` comes before the `cp` that fills it: a directory found in the root's place is
    not read on the first event, but when the watcher has seen it hold files and go quiet."""
    root = tmp_path / "mesh"
    root.mkdir()
    _write(root / "svc.yaml", _service("x"))
    source = DirectorySource(root)
    source.scan()
    root.rename(tmp_path / "mesh.old")
    root.mkdir()
    early = source.scan()
    assert _ports(early) == {"x": 80}
    assert "the config directory was replaced" in early.rejected[0].problems[0]
    _write(root / "svc.yaml", _service("x", 82))
    assert _ports(source.scan(new_root=True)) == {"x": 82}


def test_an_emptied_file_keeps_its_last_good_content_until_it_has_content(tmp_path: Path) -> None:
    file = tmp_path / "svc.yaml"
    _write(file, _service("x"))
    (tmp_path / "new.yaml").write_text("")
    source = DirectorySource(tmp_path)
    assert not source.scan().rejected  # a file that was always empty holds nothing to keep
    file.write_text("# truncated, the rest comes later\n")
    kept = source.scan([str(file)])
    assert _ports(kept) == {"x": 80}
    assert kept.rejected == (Rejection(str(file), (
        f"{file}: file is empty; its last good version keeps serving until it has content again",)),)
    file.write_text(_service("x", 83))
    fixed = source.scan([str(file)])
    assert _ports(fixed) == {"x": 83} and not fixed.rejected


def test_a_configmap_update_is_seen_through_its_symlinks(tmp_path: Path) -> None:
    """kubelet swaps `..data`; the visible `svc.yaml` link itself does not change, and the
    watcher reports only hidden paths. What the path leads to decides, not the event."""
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "svc.yaml").write_text(_service("x", 80))
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "svc.yaml").symlink_to("..data/svc.yaml")
    source = DirectorySource(tmp_path)
    assert _ports(source.scan()) == {"x": 80}
    (tmp_path / "..v2").mkdir()
    (tmp_path / "..v2" / "svc.yaml").write_text(_service("x", 84))
    (tmp_path / "..data_tmp").symlink_to("..v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    shutil.rmtree(tmp_path / "..v1")
    update = source.scan([str(tmp_path / "..data"), str(tmp_path / "..v2" / "svc.yaml")])
    assert _ports(update) == {"x": 84}
    assert [r.origin.file for r in update.resources] == [str(tmp_path / "svc.yaml")]


def test_a_fifo_in_the_directory_is_refused_without_blocking(tmp_path: Path) -> None:
    _write(tmp_path / "svc.yaml", _service("x"))
    os.mkfifo(tmp_path / "pipe.yaml")
    update = DirectorySource(tmp_path).scan()
    assert _ports(update) == {"x": 80}
    assert [(r.file, r.problems) for r in update.rejected] == [
        (str(tmp_path / "pipe.yaml"),
         (f"{tmp_path}/pipe.yaml: is a named pipe (FIFO), not a file; to read from a pipe, use -f - and redirect it",))]


def test_a_deleted_file_is_logged_as_removed_not_accepted_again(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path / "bad.yaml", _service("b", 0))
    _write(tmp_path / "good.yaml", _service("g"))
    source = DirectorySource(tmp_path)
    source.scan()
    caplog.set_level(logging.INFO, logger="meshctl.sources")
    caplog.clear()
    (tmp_path / "bad.yaml").unlink()
    (tmp_path / "good.yaml").unlink()
    source.scan([])
    messages = sorted((record.getMessage(), record.file) for record in caplog.records)  # type: ignore[attr-defined]
    assert messages == [("file removed", str(tmp_path / "bad.yaml")), ("file removed", str(tmp_path / "good.yaml"))]


async def test_the_watch_follows_a_directory_replaced_under_it(tmp_path: Path) -> None:
    """rm -rf DIR; mkdir DIR (often given the old inode number back); a pause; cp: no update
    ever withdraws the config, the copy is read, and later edits are seen too."""
    root = tmp_path / "mesh"
    root.mkdir()
    _write(root / "svc.yaml", _service("x", 80))
    updates = DirectorySource(root, debounce_after=0).updates()
    seen: list[dict[str, int]] = []

    async def until(port: int) -> None:
        while not seen or seen[-1] != {"x": port}:
            seen.append(_ports(await asyncio.wait_for(anext(updates), 5)))

    try:
        seen.append(_ports(await anext(updates)))
        shutil.rmtree(root)
        root.mkdir()
        await asyncio.sleep(0.5)
        _write(root / "svc.yaml", _service("x", 85))
        await until(85)
        _write(root / "svc.yaml", _service("x", 86))
        await until(86)
    finally:
        await updates.aclose()
    assert all(ports for ports in seen), seen



def test_files_removed_just_before_their_directory_are_not_an_edit(tmp_path: Path) -> None:
    """`rm -rf DIR` unlinks the files first: a scan that sees them gone while the directory is
    still there must not withdraw them if the directory itself goes a moment later (the first
    half of `rm -rf DIR; mkdir DIR; cp ...`); a plain deletion is still applied."""
    root = tmp_path / "mesh"
    root.mkdir()
    _write(root / "a.yaml", _service("a"))
    _write(root / "b.yaml", _service("b"))
    source = DirectorySource(root)
    source.scan()
    (root / "a.yaml").unlink()
    replaced = threading.Timer(0.05, lambda: (shutil.rmtree(root), root.mkdir()))
    replaced.start()
    update = source.scan()
    replaced.join()
    assert _ports(update) == {"a": 80, "b": 80}
    assert "was replaced" in update.rejected[-1].problems[0]

    plain = tmp_path / "plain"
    plain.mkdir()
    _write(plain / "a.yaml", _service("a"))
    _write(plain / "b.yaml", _service("b"))
    source = DirectorySource(plain)
    source.scan()
    (plain / "a.yaml").unlink()
    update = source.scan()
    assert _ports(update) == {"b": 80} and not update.rejected


_POLLED = """
import asyncio, sys
from meshctl.sources.directory import DirectorySource

async def main() -> None:
    updates = DirectorySource(sys.argv[1], debounce_after=0).updates()
    first = await anext(updates)
    print(sorted(r.name for r in first.resources), [r.file for r in first.rejected], flush=True)
    sys.stdin.readline()
    second = await asyncio.wait_for(anext(updates), 5)
    print(sorted(r.name for r in second.resources), flush=True)
    await updates.aclose()

asyncio.run(main())
"""


def test_a_tree_the_watcher_cannot_watch_is_looked_at_instead(tmp_path: Path) -> None:
    """inotify refuses a tree with an unreadable subdirectory; changes are still seen (polled),
    by a process for which that subdirectory really is unreadable."""
    _write(tmp_path / "a.yaml", _service("a"))
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0)
    try:
        child = subprocess.Popen([sys.executable, "-c", _POLLED, str(tmp_path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=bound_by_permissions)
        try:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == f"['a'] ['{tmp_path}/locked']\n"
            _write(tmp_path / "b.yaml", _service("b"))
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "['a', 'b']\n", child.communicate(timeout=10)
        finally:
            child.kill()
            child.communicate()
    finally:
        (tmp_path / "locked").chmod(0o755)
