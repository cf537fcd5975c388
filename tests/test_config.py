"""Stockade's TOML config, environment variables and flags, and their precedence.

The tests observe the network mode from inside the container, through the
interfaces listed in /proc/net/dev. They observe the platform through
`--platform=kvm`, which always fails with a message naming kvm.
"""

from __future__ import annotations

import pytest

NET_DEV = ("cat", "/proc/net/dev")


def interfaces(net_dev: str) -> set[str]:
    """Interface names in the text of /proc/net/dev."""
    return {
        line.split(":", 1)[0].strip()
        for line in net_dev.splitlines()[2:]
        if ":" in line
    }


@pytest.fixture(scope="module")
def host_interfaces() -> set[str]:
    with open("/proc/net/dev") as f:
        names = interfaces(f.read())
    if names == {"lo"}:
        pytest.skip("the host has only lo, so host and none networks look the same")
    return names


@pytest.fixture
def write_config(tmp_path):
    counter = iter(range(100))

    def write(text: str) -> str:
        path = tmp_path / f"config{next(counter)}.toml"
        path.write_text(text)
        return str(path)

    return write


def seen_interfaces(stockade, make_bundle, *global_args, env=None):
    result = stockade(
        *global_args, "run", "--bundle", str(make_bundle(*NET_DEV)), "c1", env=env
    )
    assert result.returncode == 0, f"run failed: {result.stderr}"
    return interfaces(result.stdout)


# --- where the file comes from -------------------------------------------------


def test_config_flag_sets_network(stockade, make_bundle, write_config, host_interfaces):
    config = write_config('network = "host"\n')

    seen = seen_interfaces(stockade, make_bundle, "--config", config)

    assert seen == host_interfaces


def test_config_env_sets_network(stockade, make_bundle, write_config, host_interfaces):
    config = write_config('network = "host"\n')

    seen = seen_interfaces(stockade, make_bundle, env={"STOCKADE_CONFIG": config})

    assert seen == host_interfaces


def test_config_flag_beats_config_env(
    stockade, make_bundle, write_config, host_interfaces
):
    flag_config = write_config('network = "none"\n')
    env_config = write_config('network = "host"\n')

    seen = seen_interfaces(
        stockade,
        make_bundle,
        "--config",
        flag_config,
        env={"STOCKADE_CONFIG": env_config},
    )

    assert seen == {"lo"}


# --- precedence: flag > environment > file > default ---------------------------


def test_network_default_is_none(stockade, make_bundle, host_interfaces):
    seen = seen_interfaces(stockade, make_bundle)

    assert seen == {"lo"}


def test_network_env_beats_file(stockade, make_bundle, write_config, host_interfaces):
    config = write_config('network = "host"\n')

    seen = seen_interfaces(
        stockade, make_bundle, "--config", config, env={"STOCKADE_NETWORK": "none"}
    )

    assert seen == {"lo"}


def test_network_flag_beats_env(stockade, make_bundle, host_interfaces):
    seen = seen_interfaces(
        stockade, make_bundle, "--network", "none", env={"STOCKADE_NETWORK": "host"}
    )

    assert seen == {"lo"}


def test_network_flag_beats_file(stockade, make_bundle, write_config, host_interfaces):
    config = write_config('network = "none"\n')

    seen = seen_interfaces(
        stockade, make_bundle, "--config", config, "--network", "host"
    )

    assert seen == host_interfaces


def test_platform_from_file(stockade, make_bundle, write_config):
    config = write_config('platform = "kvm"\n')

    result = stockade(
        "--config", config, "run", "--bundle", str(make_bundle("true")), "c1"
    )

    assert result.returncode == 1
    assert "kvm" in result.stderr, (
        f"the file's platform was not used: {result.stderr!r}"
    )


def test_platform_env_beats_file(stockade, make_bundle, write_config):
    config = write_config('platform = "kvm"\n')
    bundle = make_bundle("true")

    result = stockade(
        "--config",
        config,
        "run",
        "--bundle",
        str(bundle),
        "c1",
        env={"STOCKADE_PLATFORM": "ptrace"},
    )

    assert result.returncode == 0, (
        f"the environment did not override the file: {result.stderr}"
    )


def test_platform_flag_beats_env(stockade, make_bundle):
    bundle = make_bundle("true")

    kvm_from_env = stockade(
        "run", "--bundle", str(bundle), "c1", env={"STOCKADE_PLATFORM": "kvm"}
    )
    flag_wins = stockade(
        "--platform",
        "ptrace",
        "run",
        "--bundle",
        str(bundle),
        "c2",
        env={"STOCKADE_PLATFORM": "kvm"},
    )

    assert kvm_from_env.returncode == 1
    assert "kvm" in kvm_from_env.stderr
    assert flag_wins.returncode == 0, (
        f"the flag did not override the environment: {flag_wins.stderr}"
    )


# --- invalid configuration -----------------------------------------------------


def test_unknown_key_rejected(stockade, write_config):
    config = write_config("netwrk = 'host'\n")

    result = stockade("--config", config, "list")

    assert result.returncode == 1
    assert "unknown key 'netwrk'" in result.stderr
    assert config in result.stderr, f"message does not name the file: {result.stderr!r}"


def test_wrong_type_rejected(stockade, write_config):
    config = write_config('debug = "yes"\n')

    result = stockade("--config", config, "list")

    assert result.returncode == 1
    assert "'debug' must be a bool" in result.stderr
    assert config in result.stderr, f"message does not name the file: {result.stderr!r}"


def test_wrong_type_in_env_rejected(stockade):
    result = stockade("list", env={"STOCKADE_DEBUG": "maybe"})

    assert result.returncode == 1
    assert "STOCKADE_DEBUG='maybe' is not a boolean" in result.stderr


def test_unknown_plugin_table_rejected(stockade, make_bundle, write_config):
    config = write_config("[plugins.nosuch]\nkey = 1\n")

    result = stockade(
        "--config", config, "run", "--bundle", str(make_bundle("true")), "c1"
    )

    assert result.returncode == 1
    assert "unknown table [plugins.nosuch]" in result.stderr
    assert config in result.stderr, f"message does not name the file: {result.stderr!r}"


def test_plugins_not_a_table_rejected(stockade, write_config):
    config = write_config("plugins = 3\n")

    result = stockade("--config", config, "list")

    assert result.returncode == 1
    assert "[plugins.NAME]" in result.stderr


def test_missing_config_file(stockade, tmp_path):
    missing = str(tmp_path / "missing.toml")

    result = stockade("--config", missing, "list")

    assert result.returncode == 1
    assert f"config file {missing} not found" in result.stderr


def test_missing_config_file_from_env(stockade, tmp_path):
    missing = str(tmp_path / "missing.toml")

    result = stockade("list", env={"STOCKADE_CONFIG": missing})

    assert result.returncode == 1
    assert f"config file {missing} not found" in result.stderr


def test_invalid_toml_rejected(stockade, write_config):
    config = write_config("network = \n")

    result = stockade("--config", config, "list")

    assert result.returncode == 1
    assert f"config file {config} is not valid TOML" in result.stderr


@pytest.mark.parametrize(
    "option, valid",
    [
        ("--network", ["host", "none"]),
        ("--platform", ["kvm", "ptrace"]),
        ("--file-access", ["direct"]),
    ],
)
def test_unknown_provider_lists_valid(stockade, make_bundle, option, valid):
    result = stockade(
        option, "bogus", "run", "--bundle", str(make_bundle("true")), "c1"
    )

    assert result.returncode == 1
    assert f"unknown {option} 'bogus'" in result.stderr
    for name in valid:
        assert name in result.stderr, (
            f"{name} is not listed as valid: {result.stderr!r}"
        )
    assert not (stockade.root / "c1").exists(), (
        "state directory left by a rejected option"
    )


def test_unknown_network_names_file(stockade, make_bundle, write_config):
    config = write_config('network = "bogus"\n')

    result = stockade(
        "--config", config, "run", "--bundle", str(make_bundle("true")), "c1"
    )

    assert result.returncode == 1
    assert config in result.stderr, f"message does not name the file: {result.stderr!r}"


def test_unknown_network_names_env(stockade, make_bundle):
    bundle = make_bundle("true")

    result = stockade(
        "run", "--bundle", str(bundle), "c1", env={"STOCKADE_NETWORK": "bogus"}
    )

    assert result.returncode == 1
    assert "STOCKADE_NETWORK" in result.stderr, (
        f"message does not name the variable: {result.stderr!r}"
    )
