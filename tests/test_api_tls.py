"""The public API over TLS: a node serves it when `[api] tls_cert` / `tls_key` are set,
the launcher's readiness probe dials it, and the CLI dials it with `--tls-ca` (or
$SPARK_TLS_CA) and says what is wrong without."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.error
import urllib.request
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


def test_the_gateway_serves_https_when_http_tls_files_are_set(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home").home
    authority = new_authority("gateway test CA")
    chain, key = api_certificate(authority)
    (home.keys_dir / "http-cert.pem").write_bytes(chain)
    keystore.write_private_file(home.keys_dir / "http-key.pem", key)
    config = home.config()
    http = dataclasses.replace(
        config.http, tls_cert="keys/http-cert.pem", tls_key="keys/http-key.pem"
    )
    write_config(home.config_path, dataclasses.replace(config, http=http))
    trusting = ssl.create_default_context(cafile=None, cadata=authority.cert_pem.decode())
    try:
        launcher.start_node(home, timeout_s=START_TIMEOUT_S)
        url = f"https://{http.listen}/healthz"
        with urllib.request.urlopen(url, timeout=10, context=trusting) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"status": "alive"}
        # plain HTTP on the TLS port gets no answer, and a client without the CA refuses it
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://{http.listen}/healthz", timeout=10)
        with pytest.raises(urllib.error.URLError) as refused:
            urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context())
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    finally:
        launcher.stop_node(home)


def test_a_gateway_key_that_is_not_a_key_is_named_at_start(tmp_path: Path) -> None:
    home = init_home(tmp_path / "home").home
    (home.keys_dir / "http-cert.pem").write_bytes(b"not a certificate")
    keystore.write_private_file(home.keys_dir / "http-key.pem", b"not a key")
    config = home.config()
    http = dataclasses.replace(
        config.http, tls_cert="keys/http-cert.pem", tls_key="keys/http-key.pem"
    )
    write_config(home.config_path, dataclasses.replace(config, http=http))
    with pytest.raises(SparkError) as caught:
        home.http_tls()
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert "http.tls_cert/tls_key" in caught.value.message
    assert "http-cert.pem" in caught.value.message


def test_gateway_tls_needs_both_files() -> None:
    text = (
        '[node]\nname = "n"\nrole = "validator"\n'
        '[api]\nlisten = "127.0.0.1:1"\n'
        '[p2p]\nlisten = "127.0.0.1:2"\n'
        '[http]\nlisten = "127.0.0.1:3"\ntls_key = "key.pem"\n'
    )
    with pytest.raises(SparkError) as caught:
        parse_config(text)
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    assert "http.tls_cert: missing" in caught.value.message
