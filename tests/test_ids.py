"""Container ids: invalid ones are rejected before anything touches the disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# (test id, container id, text the error message must contain to name it)
INVALID_IDS = [
    ("empty", "", "''"),
    ("dot", ".", "'.'"),
    ("dotdot", "..", "'..'"),
    ("slash", "a/b", "a/b"),
    ("parent", "../x", "../x"),
    ("space", "a b", "a b"),
    ("newline", "x\ny", "x\\ny"),
    ("too_long", "a" * 201, "a" * 40),
    ("unicode", "h\u00e9llo", "h\u00e9llo"),
]


def tree(path: Path) -> set[str]:
    """Return every path under PATH, relative to it; empty if PATH does not exist."""
    found = set()
    for directory, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(directory, name), path))
    return found


@pytest.mark.parametrize(
    "container_id, named",
    [case[1:] for case in INVALID_IDS],
    ids=[case[0] for case in INVALID_IDS],
)
def test_create_rejects_invalid_id(
    stockade, make_bundle, tmp_path, container_id, named
):
    bundle = make_bundle("true")
    before = tree(tmp_path)

    result = stockade("create", "--bundle", str(bundle), container_id)

    assert result.returncode != 0, f"create {container_id!r} succeeded"
    assert "invalid container id" in result.stderr, (
        f"unexpected message: {result.stderr!r}"
    )
    assert named in result.stderr, f"message does not name the id: {result.stderr!r}"
    root_files = tree(stockade.root)
    assert not root_files, f"files created under the root: {sorted(root_files)}"
    created = tree(tmp_path) - before - {stockade.root.name}
    assert not created, f"files created next to the bundle: {sorted(created)}"


def test_create_accepts_200_char_id(stockade, make_bundle):
    bundle = make_bundle("true")
    container_id = "a" * 200

    stockade.ok("create", "--bundle", str(bundle), container_id)
    state = stockade.state(container_id)
    stockade.ok("delete", container_id)

    assert state["id"] == container_id
    assert state["status"] == "created"
    assert not (stockade.root / container_id).exists(), (
        "state directory left after delete"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("state", ".."),
        ("kill", "..", "KILL"),
        ("delete", ".."),
        ("delete", "--force", ".."),
        ("start", ".."),
    ],
    ids=["state", "kill", "delete", "delete_force", "start"],
)
def test_dotdot_id_touches_nothing(stockade, tmp_path, args):
    # The root's parent looks like a container's state directory, so a command
    # that used ".." as a file name would read, lock or remove it.
    stockade.root.mkdir()
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / "marker").write_text("keep")
    before = tree(tmp_path)

    result = stockade(*args)

    assert result.returncode != 0, f"{' '.join(args)} succeeded"
    assert "invalid container id '..'" in result.stderr, (
        f"unexpected message: {result.stderr!r}"
    )
    assert tree(tmp_path) == before, f"files changed: {sorted(tree(tmp_path) ^ before)}"
    assert (tmp_path / "marker").read_text() == "keep"
