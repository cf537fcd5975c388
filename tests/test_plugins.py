"""Third-party plugins: installed as their own packages, found through entry points."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stockade import hookspecs

TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs" / "plugins.md"


def pip_install_target(package: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(package)],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed into a directory of its own, for PYTHONPATH."""
    target = tmp_path_factory.mktemp("example-site")
    pip_install_target(TESTS / "example_plugin", target)
    return target


@pytest.fixture(scope="session")
def duplicate_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("duplicate-site")
    pip_install_target(TESTS / "duplicate_plugin", target)
    return target


@pytest.fixture
def with_example(stockade, example_site, tmp_path):  # type: ignore[no-untyped-def]
    """The stockade fixture with the example plugin on the path and its audit log set."""
    audit = tmp_path / "audit.log"
    config = tmp_path / "config.toml"
    config.write_text(f'[plugins.example]\nlog = "{audit}"\n')
    stockade.env["PYTHONPATH"] = str(example_site)
    stockade.env["STOCKADE_CONFIG"] = str(config)
    return stockade, audit


def test_plugins_lists_example(with_example):
    stockade, _ = with_example
    output = stockade.ok("plugins").stdout
    assert "example (stockade-example-plugin 1.0.0, external)" in output
    assert "network example:" in output


def test_builtin_plugins_are_listed(stockade):
    output = stockade.ok("plugins").stdout
    for name in ("platform_ptrace", "fs_direct", "net_none", "net_host"):
        assert f"{name} (stockade " in output


def test_example_network_mode(with_example, make_bundle):
    stockade, _ = with_example
    bundle = make_bundle("ip", "-o", "addr", "show", "example0")
    result = stockade.ok("--network", "example", "run", "--bundle", str(bundle), "c1")
    assert "192.0.2.1/24" in result.stdout


def test_hook_order_observed(with_example, make_bundle):
    stockade, audit = with_example
    bundle = make_bundle("true")
    stockade.ok("run", "--bundle", str(bundle), "c1")
    assert audit.read_text().splitlines() == [
        "pre_create c1",
        "namespaces c1",
        "file_access c1",
        "network pid=True c1",
        "start c1",
        "network_teardown c1",
        "file_access_teardown c1",
        "post_delete state_removed=True c1",
    ]


def test_veto_rejects_create(with_example, make_bundle, tmp_path):
    stockade, _ = with_example

    def veto(config):  # type: ignore[no-untyped-def]
        config["annotations"] = {"org.example.veto": "true"}

    bundle = make_bundle("true", edit=veto)
    pid_file = tmp_path / "pid"
    result = stockade(
        "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1"
    )
    assert result.returncode == 1
    assert "rejected by org.example.veto" in result.stderr
    assert not pid_file.exists()
    assert not (stockade.root / "c1").exists()


def test_external_plugins_disabled(with_example):
    stockade, _ = with_example
    env = {"STOCKADE_DISABLE_EXTERNAL_PLUGINS": "1", "STOCKADE_CONFIG": ""}
    output = stockade.ok("plugins", env=env).stdout
    assert "example" not in output.split()
    assert "net_none (stockade" in output


def test_plugin_table_unknown_key(with_example, tmp_path):
    stockade, _ = with_example
    config = tmp_path / "bad.toml"
    config.write_text('[plugins.example]\nlogfile = "/x"\n')
    result = stockade("--config", str(config), "plugins")
    assert result.returncode == 1
    assert "'logfile'" in result.stderr
    assert str(config) in result.stderr


def test_duplicate_provider_names_both(stockade, duplicate_site):
    result = stockade("plugins", env={"PYTHONPATH": str(duplicate_site)})
    assert result.returncode == 1
    assert "net_none" in result.stderr
    assert "duplicate" in result.stderr


def test_unknown_network_lists_valid(stockade, make_bundle):
    bundle = make_bundle("true")
    result = stockade("--network", "nosuch", "run", "--bundle", str(bundle), "c1")
    assert result.returncode == 1
    assert "'nosuch'" in result.stderr
    assert "host, none" in result.stderr


def test_every_hook_documented():
    guide = DOCS.read_text()
    for name in hookspecs.hook_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc.splitlines()) >= 3, (
            f"{name} needs a docstring with purpose and rules"
        )
        assert f"`{name}`" in guide, f"{name} is missing from docs/plugins.md"


def test_guide_example_matches_package():
    """The worked example in the guide is the code the tests install and run."""
    guide = DOCS.read_text()
    source = (TESTS / "example_plugin" / "stockade_example" / "plugin.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    assert source in blocks


def test_plugins_output_is_json_safe_for_state(with_example, make_bundle):
    stockade, _ = with_example
    bundle = make_bundle("sleep", "5")
    stockade.ok("--network", "example", "create", "--bundle", str(bundle), "c1")
    saved = json.loads((stockade.root / "c1" / "state.json").read_text())
    assert saved["plugin_state"]["example"] == {"interface": "example0"}
    stockade.ok("delete", "--force", "c1")
