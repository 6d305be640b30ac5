"""The watched directory source: per-file refusal with the loader's message, last good kept,
recovery, deletion, duplicates, and Istio-style debounce."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from meshctl.errors import UsageError
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
