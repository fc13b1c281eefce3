"""Each setting is declared once (shared/operations/config.py): its default, variable and meaning in one place, read by the one
loader and listed by the README's table, which is generated from the same declarations."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from shared.operations import config
from shared.operations.config import Retention, Settings, load_settings
from shared.operations.errors import ConfigError
from shared.wire import contracts


def test_unset_leaves_the_declared_default_and_set_is_converted_to_the_fields_type() -> None:
    defaults = load_settings({})
    changed = load_settings({"ASSAY_ACK_WAIT_S": "2.5", "ASSAY_MAX_DELIVER": "7", "ASSAY_AUTH": "off"})
    for name, _kind, _var, default in config.declarations(Settings):
        if isinstance(default, str | int | float | bool | tuple):
            assert getattr(defaults, name) == default, name  # read from the declaration, nowhere else
    assert (changed.ack_wait_s, changed.max_deliver) == (2.5, 7)
    assert changed.auth is False
    assert load_settings({"ASSAY_TARGET_ALLOW": " a, b:1 ,"}).target_allow == ("a", "b:1")
    assert load_settings({"ASSAY_METRICS_PORT": "9000"}).metrics_port == 9000
    assert load_settings({"ASSAY_ACK_WAIT_S": ""}).ack_wait_s == 30.0  # empty counts as unset


def test_derived_defaults_follow_the_settings_they_come_from(tmp_path: Path) -> None:
    settings = load_settings({"ASSAY_VAR_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert settings.trace_dir == tmp_path / "traces" and settings.app_work_dir == tmp_path / "apps"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'assay.db'}"
    assert settings.config_dir == tmp_path / "cfg" / "assay"
    assert load_settings({"ASSAY_RESULTS_DIR": "r"}).results_dir == Path("r").absolute()
    # The second name, when the first is unset.
    assert load_settings({"OPENROUTER_API_KEY": "k"}).ai_api_key == "k"
    assert load_settings({"ASSAY_EVENTS_MAX_BYTES": "-1"}).jetstream.events == Retention(7 * config.DAY_S, -1)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ASSAY_ACK_WAIT_S", "soon", "Expected `float`"),
        ("ASSAY_APP_SANDBOX", "docker", "use bwrap or off"),
        ("ASSAY_AUTH", "maybe", "expected on or off"),
        ("ASSAY_UMASK", "022", "would let other users read"),
        ("ASSAY_NATS_REPLICAS", "7", "1 to 5"),
        ("ASSAY_REQUESTS_MAX_AGE_S", "60", "at least 120"),
        ("ASSAY_DLQ_MAX_BYTES", "0", "-1 for no size limit"),
        ("ASSAY_IDEMPOTENCY_LEASE_S", "0", "at least 1 s"),
        ("ASSAY_IDEMPOTENCY_LEASE_S", "0.5", "at least 1 s"),
        ("ASSAY_IDEMPOTENCY_TTL_S", "-1", "at least 1 s"),
        ("ASSAY_IDEMPOTENCY_TTL_S", "nan", "at least 1 s"),
    ],
)
def test_a_refused_value_names_its_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}={value}: .*{re.escape(says)}"):
        load_settings({name: value})


def test_the_readme_table_is_the_declarations_one_row_each() -> None:
    readme = config.README.read_text()
    assert config.table() in readme  # what `python -m shared.operations.config --check` holds in `make lint`
    listed = re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|", config.table(), re.M)
    variables = [name.strip("`") for row in listed for name in row.split(", ")]
    assert len(variables) == len(set(variables))  # no variable declared twice
    some = {"ASSAY_ACK_WAIT_S", "ASSAY_NATS_REPLICAS", "ASSAY_DLQ_MAX_BYTES", "XDG_CONFIG_HOME"}
    assert some < set(variables)
    assert config.main(["--check"]) == 0


def test_the_table_writers_refuse_an_argument_they_do_not_know_and_write_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--help` or a typo used to rewrite the README (and the contracts) as a bare call does."""
    readme = config.README.read_text()
    written = {path: path.read_text() for path in contracts.CONTRACTS_DIR.iterdir() if path.is_file()}
    for main, name in ((config.main, "shared.operations.config"), (contracts.main, "shared.wire.contracts")):
        for argv in (["--help"], ["--chek"], ["--check", "extra"]):
            assert main(argv) == 2
            assert f"usage: python -m {name} [--check]" in capsys.readouterr().err
    assert config.README.read_text() == readme
    assert {path: path.read_text() for path in contracts.CONTRACTS_DIR.iterdir() if path.is_file()} == written


def test_a_setting_declared_without_its_variable_is_refused_with_the_way_to_declare_it() -> None:
    class OldWay(msgspec.Struct, frozen=True, kw_only=True):
        stale_s: float = 600.0  # ASSAY_STALE_S: a comment is no declaration

    with pytest.raises(TypeError, match=r"OldWay.stale_s names no variable: declare it as `stale_s: "):
        config.declarations(OldWay)
