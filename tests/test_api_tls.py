"""The public API over TLS: a node serves it when `[api] tls_cert` / `tls_key` are set,
the launcher's readiness probe dials it, and the CLI dials it with `--tls-ca` (or
$SPARK_TLS_CA) and says what is wrong without."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.node import keystore, launcher
from sparkchain.node.config import ApiConfig, parse_config, write_config
from sparkchain.node.home import NodeHome, free_loopback_ports, init_home
from sparkchain.node.tls import new_authority
from tests.helpers.cli import spark
from tests.helpers.tls import api_certificate

START_TIMEOUT_S = 60.0


def _home_with_tls_api(root: Path) -> tuple[NodeHome, str, Path]:
    """A stopped single-validator home whose API serves TLS: (home, API address, CA file)."""
    api_port, p2p_port = free_loopback_ports(2)
    api = f"127.0.0.1:{api_port}"
    home = init_home(root / "home", api_listen=api, p2p_listen=f"127.0.0.1:{p2p_port}").home
    authority = new_authority("api test CA")
    chain, key = api_certificate(authority)
    (home.keys_dir / "api-cert.pem").write_bytes(chain)
    keystore.write_private_file(home.keys_dir / "api-key.pem", key)
    ca_file = root / "api-ca.pem"
    ca_file.write_bytes(authority.cert_pem)
    tls_api = ApiConfig(api, tls_cert="keys/api-cert.pem", tls_key="keys/api-key.pem")
    write_config(home.config_path, dataclasses.replace(home.config(), api=tls_api))
    return home, api, ca_file


def test_the_api_over_tls_answers_the_cli_given_its_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, api, ca_file = _home_with_tls_api(tmp_path)
    monkeypatch.delenv("SPARK_TLS_CA", raising=False)
    try:
        answer = launcher.start_node(home, timeout_s=START_TIMEOUT_S)  # probes over TLS
        assert answer.chain_id == home.genesis().chain_id

        code, out, err = spark(capsys, "status", "--node", api, "--tls-ca", str(ca_file))
        assert code == 0, err
        assert home.genesis().chain_id in out

        monkeypatch.setenv("SPARK_TLS_CA", str(ca_file))
        code, out, err = spark(capsys, "status", "--node", api)
        assert code == 0, err
        monkeypatch.delenv("SPARK_TLS_CA")

        code, out, err = spark(capsys, "status", "--node", api)
        assert code == 3, (out, err)
        assert err.startswith("error: UNAVAILABLE: ")
        assert "--tls-ca" in err, err

        other_ca = tmp_path / "other-ca.pem"
        other_ca.write_bytes(new_authority("another CA").cert_pem)
        code, out, err = spark(capsys, "status", "--node", api, "--tls-ca", str(other_ca))
        assert code == 3, (out, err)
        assert "TLS" in err and "--tls-ca" in err, err
    finally:
        launcher.stop_node(home)


def test_api_tls_needs_both_files() -> None:
    text = (
        '[node]\nname = "n"\nrole = "validator"\n'
        '[api]\nlisten = "127.0.0.1:1"\ntls_cert = "cert.pem"\n'
        '[p2p]\nlisten = "127.0.0.1:2"\n'
    )
    with pytest.raises(SparkError) as caught:
        parse_config(text)
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert "api.tls_key: missing" in caught.value.message
