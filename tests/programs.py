"""Static test programs, compiled once per session and copied into bundles."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parent / "programs"


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of a static binary built from tests/programs/NAME.c."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: `make test` installs it")
    out = tmp_path_factory.mktemp("programs")
    built = {}
    for source in sorted(SOURCES.glob("*.c")):
        binary = out / source.stem
        subprocess.run(
            ["gcc", "-static", "-O2", "-pthread", "-o", str(binary), str(source)],
            check=True,
            capture_output=True,
        )
        built[source.stem] = binary
    return built


def install(bundle: Path, programs: dict[str, Path], *names: str) -> None:
    for name in names:
        shutil.copy(programs[name], bundle / "rootfs" / "bin" / name)
