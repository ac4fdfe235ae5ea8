"""Settings: environment names of protocol §3.9, boolean rules, validation, the bind rule."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app import CAPABILITY, PROJECT_ROOT, __version__
from app.settings import Settings, get_settings, is_loopback_host, parse_env_bool
from domain_client.config import NodeConfig, normalise_capabilities
from domain_client.throughput import DownloadRateLimit

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_reference_node() -> None:
    s = Settings()
    assert (s.dms_base_url, s.dds_base_url) == (
        "https://dms.auki.network/v1", "https://dds.auki.network/",
    )  # fmt: skip
    assert (s.request_timeout_secs, s.register_interval_secs, s.register_max_retry) == (60, 120, -1)
    assert (s.poll_backoff_ms_min, s.poll_backoff_ms_max) == (1000, 30000)
    assert (s.heartbeat_min_ratio, s.heartbeat_max_ratio) == (0.25, 0.35)
    assert (s.token_safety_ratio, s.token_reauth_max_retries, s.token_reauth_jitter_ms) == (
        0.75, 3, 500,
    )  # fmt: skip
    assert s.tasks_root == Path("tasks") and s.disable_tasks_cleanup is False
    assert s.client_id.startswith("splatter-node/")
    assert (s.splatter_host, s.splatter_port) == ("127.0.0.1", 8080)
    assert s.lease_mode is False
    assert s.splatter_trainer == "builtin"
    assert s.pipeline_argv == [sys.executable, "-m", "pipeline"]
    assert s.log_format == "auto"  # text on a terminal, JSON otherwise (issue #10)


def test_environment_variables_use_the_reference_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "REG_SECRET": "console-secret",
        "SECP256K1_PRIVHEX": f"  0x{KEY.upper()}  ",
        "DMS_BASE_URL": "http://127.0.0.1:9000/v1/",
        "DDS_BASE_URL": "http://127.0.0.1:9001/",
        "REQUEST_TIMEOUT_SECS": "30",
        "TASKS_ROOT": "/app/tasks",
        "DISABLE_TASKS_CLEANUP": "Yes",
        "CLIENT_ID": "  my-node/1  ",
        "NODE_VERSION": "v2.3.4",
        "LOG_FORMAT": "text",
        "SPLATTER_ITERATIONS": "7000",
        "SPLATTER_TRAINER": "nerfstudio",
        "PIPELINE_COMMAND": "python3 -m pipeline",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.lease_mode
    assert s.secp256k1_privhex is not None and s.secp256k1_privhex.get_secret_value() == KEY
    assert s.dms_base_url == "http://127.0.0.1:9000/v1/"  # DmsClient strips one "/"
    assert s.dds_base_url == "http://127.0.0.1:9001/"
    assert s.request_timeout_secs == 30 and s.tasks_root == Path("/app/tasks")
    assert s.disable_tasks_cleanup is True
    assert s.client_id == "my-node/1" and s.node_version == "2.3.4"
    assert s.log_format == "text" and s.splatter_iterations == 7000
    assert s.splatter_trainer == "nerfstudio"
    assert s.pipeline_argv == ["python3", "-m", "pipeline"]


@pytest.mark.parametrize("word", ["1", "true", "TRUE", "yes", "On"])
def test_true_words_follow_the_reference(word: str) -> None:
    assert parse_env_bool(word) is True


@pytest.mark.parametrize("word", ["0", "false", "No", "OFF"])
def test_false_words(word: str) -> None:
    assert parse_env_bool(word) is False


def test_an_unknown_boolean_word_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISABLE_TASKS_CLEANUP", "enabled")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "disable_tasks_cleanup" in str(error.value)
    assert "expected one of 1/true/yes/on or 0/false/no/off" in str(error.value)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLE_TASKS_CLEANUP", "")
    monkeypatch.setenv("REG_SECRET", "")
    assert Settings().disable_tasks_cleanup is False and Settings().reg_secret is None


@pytest.mark.parametrize(("present", "missing"), [
    ({"REG_SECRET": "s"}, "SECP256K1_PRIVHEX required"),
    ({"SECP256K1_PRIVHEX": KEY}, "REG_SECRET required"),
])  # fmt: skip
def test_lease_mode_needs_both_credentials(
    monkeypatch: pytest.MonkeyPatch, present: dict[str, str], missing: str
) -> None:
    for name, value in present.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=missing):
        Settings()


def test_a_malformed_private_key_is_rejected_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REG_SECRET", "s")
    monkeypatch.setenv("SECP256K1_PRIVHEX", "abc123-not-a-key")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "must be 32 bytes of hex" in error.value.errors()[0]["msg"]
    assert "abc123" not in error.value.errors()[0]["msg"]


def test_the_request_timeout_follows_the_reference_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_TIMEOUT_SECS", "0")
    assert Settings().request_timeout_secs == 1  # [PM]: 0 becomes 1
    monkeypatch.setenv("REQUEST_TIMEOUT_SECS", "301")
    with pytest.raises(ValidationError, match="REQUEST_TIMEOUT_SECS must be 1 to 300, got 301"):
        Settings()


def test_a_base_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMS_BASE_URL", "ftp://dms.example/v1")
    with pytest.raises(ValidationError, match="DMS_BASE_URL must be an http"):
        Settings()


def test_the_client_id_must_be_printable_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIENT_ID", "node\u00e9")
    with pytest.raises(ValidationError, match="printable ASCII"):
        Settings()


@pytest.mark.parametrize(
    ("raw", "version"),
    [
        ("v2.3.4", "2.3.4"),
        ("V1.0.0-rc.1", "1.0.0-rc.1"),
        ("2.3", __version__),
        ("nonsense", __version__),
        (" 1.2.3 ", "1.2.3"),
        (None, __version__),
    ],
)
def test_node_version_is_normalised_to_semver(raw: str | None, version: str) -> None:
    assert Settings(node_version=raw).node_version == version


def test_node_config_carries_the_lease_settings_to_domain_client() -> None:
    s = Settings(
        reg_secret="console-secret",
        secp256k1_privhex=f"0x{KEY}",
        dds_base_url="http://127.0.0.1:9001",
        request_timeout_secs=0,
        poll_backoff_ms_min=10,
        heartbeat_max_ratio=0.3,
        client_id=" node/7 ",
        node_version="v1.2.3",
    )
    config = s.node_config()
    assert type(config) is NodeConfig
    assert config.secrets() == ("console-secret", KEY)
    assert normalise_capabilities([CAPABILITY]) == (CAPABILITY,)
    assert (config.dds_base_url, config.dms_base_url) == (
        "http://127.0.0.1:9001/", "https://dms.auki.network/v1",
    )  # fmt: skip
    assert (config.request_timeout_secs, config.poll_backoff_ms_min) == (1, 10)
    assert (config.heartbeat_min_ratio, config.heartbeat_max_ratio) == (0.25, 0.3)
    assert (config.client_id, config.node_version) == ("node/7", "1.2.3")
    assert "console-secret" not in repr(config) and KEY not in repr(config)


def test_node_config_needs_lease_mode() -> None:
    with pytest.raises(RuntimeError, match="lease mode needs REG_SECRET and SECP256K1_PRIVHEX"):
        Settings().node_config()


def test_a_non_loopback_address_needs_a_token_or_an_explicit_open_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPLATTER_HOST", "0.0.0.0")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "refusing to listen on non-loopback address '0.0.0.0' without SPLATTER_API_TOKEN" in (
        str(error.value)
    )
    monkeypatch.setenv("SPLATTER_API_TOKEN", "t0ken-value")
    assert Settings().splatter_host == "0.0.0.0"
    monkeypatch.delenv("SPLATTER_API_TOKEN")
    monkeypatch.setenv("SPLATTER_ALLOW_OPEN", "1")
    assert Settings().splatter_allow_open is True


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_secret_values_lists_every_configured_secret() -> None:
    s = Settings(reg_secret="reg", secp256k1_privhex=KEY, splatter_api_token="api")
    assert sorted(s.secret_values()) == sorted(["reg", KEY, "api"])


def test_case_28_environment_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Protocol §3.9 / case 28 through the one environment parser (was ``load_node_config``)."""
    required = {"REG_SECRET": "console-secret", "SECP256K1_PRIVHEX": KEY}
    env = {
        **required,
        "DDS_BASE_URL": "https://dds.example",
        "REQUEST_TIMEOUT_SECS": "0",
        "NODE_VERSION": "v2.3.4",
        "REGISTER_MAX_RETRY": "-1",
        "CLIENT_ID": "  my-node  ",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = get_settings_uncached().node_config()
    assert config.dds_base_url == "https://dds.example/"
    assert config.request_timeout_secs == 1
    assert config.node_version == "2.3.4"
    assert config.register_max_retry == -1
    assert config.client_id == "my-node"
    monkeypatch.setenv("NODE_VERSION", "not-semver")
    assert get_settings_uncached().node_version == __version__
    monkeypatch.setenv("REQUEST_TIMEOUT_SECS", "301")
    with pytest.raises(ValidationError, match="REQUEST_TIMEOUT_SECS must be 1 to 300, got 301"):
        get_settings_uncached()
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SECP256K1_PRIVHEX", KEY)
    with pytest.raises(ValidationError, match="REG_SECRET required"):
        get_settings_uncached()
    monkeypatch.delenv("SECP256K1_PRIVHEX")
    monkeypatch.setenv("REG_SECRET", "console-secret")
    with pytest.raises(ValidationError, match="SECP256K1_PRIVHEX required"):
        get_settings_uncached()


def get_settings_uncached() -> Settings:
    """``get_settings()`` without its cache: a fresh read of the environment."""
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("tasks_root", "data_dir", "named"),
    [
        (".", "data", "SPLATTER_DATA_DIR"),
        ("work", "work/data", "SPLATTER_DATA_DIR"),
        ("..", "/elsewhere/data", "the working directory"),
        ("/", "/elsewhere/data", "SPLATTER_DATA_DIR"),
        (str(PROJECT_ROOT), "/elsewhere/data", "the node's installation"),
        (sys.prefix, "/elsewhere/data", "the Python environment"),
    ],
)
def test_a_tasks_root_holding_the_store_the_cwd_or_the_install_is_refused(
    monkeypatch: pytest.MonkeyPatch, tasks_root: str, data_dir: str, named: str
) -> None:
    monkeypatch.setenv("TASKS_ROOT", tasks_root)
    monkeypatch.setenv("SPLATTER_DATA_DIR", data_dir)
    with pytest.raises(ValidationError, match=rf"TASKS_ROOT \(.*\) contains {named} \(") as err:
        Settings()
    assert "choose a TASKS_ROOT outside" in str(err.value)


def test_tasks_root_beside_the_store_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_ROOT", "tasks")
    monkeypatch.setenv("SPLATTER_DATA_DIR", "tasks-data")
    assert Settings().tasks_root == Path("tasks")


def test_the_push_door_defaults() -> None:
    s = Settings()
    assert (s.token_wait_secs, s.splatter_max_queued, s.job_retention_days) == (300.0, 32, 30.0)
    assert s.allowed_domain_hosts.patterns == ()


def test_allowed_domain_hosts_are_parsed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLATTER_ALLOWED_DOMAIN_HOSTS", "10.0.0.*:8443, [::1] localhost")
    hosts = Settings().allowed_domain_hosts
    assert [(p.host, p.port) for p in hosts.patterns] == [
        ("10.0.0.*", 8443), ("::1", None), ("localhost", None),
    ]  # fmt: skip
    monkeypatch.setenv("SPLATTER_ALLOWED_DOMAIN_HOSTS", "https://10.0.0.1/")
    with pytest.raises(ValidationError) as error:
        Settings()
    assert "splatter_allowed_domain_hosts" in str(error.value)
    assert "is not host[:port] (no scheme, path or userinfo)" in str(error.value)


def test_job_timeout_defaults_by_profile_and_the_download_floor_by_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(splatter_backend="cpu").job_timeout_s == 7200
    assert Settings(splatter_backend="gsplat").job_timeout_s == 14400
    assert Settings(splatter_backend="auto").job_timeout_s == 14400
    monkeypatch.setenv("JOB_TIMEOUT_SECS", "90")
    monkeypatch.setenv("MIN_DOWNLOAD_BYTES_PER_SEC", "1000")
    monkeypatch.setenv("DOWNLOAD_RATE_WINDOW_SECS", "5")
    settings = Settings(splatter_backend="cpu")
    assert settings.job_timeout_s == 90
    assert settings.download_rate == DownloadRateLimit(1000.0, 5.0)
    assert Settings(min_download_bytes_per_sec=0).download_rate.enabled is False
