"""`ESR_KAFKA_*` security properties -> Faust credentials -> the aiokafka arguments Faust's driver passes on.

tests/data/tls holds a test-only CA and a client certificate signed by it (key password "secret").
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.auth import GSSAPICredentials, SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from esr.config import Settings
from streams.app import Tuning, faust_settings, output_config
from streams.security import SecurityConfigError, faust_credentials

TLS = Path(__file__).resolve().parents[2] / "data" / "tls"
CA, CERT, KEY = str(TLS / "ca.pem"), str(TLS / "client.pem"), str(TLS / "client.key")
MUTUAL = {"ssl.ca.location": CA, "ssl.certificate.location": CERT, "ssl.key.location": KEY,
          "ssl.key.password": "secret"}


def aiokafka(overrides: dict[str, str]) -> dict[str, Any]:
    return dict(credentials_to_aiokafka_auth(faust_credentials(overrides)))


def test_plaintext_needs_no_credentials() -> None:
    assert faust_credentials({}) is None
    assert faust_credentials({"security.protocol": "plaintext", "client.id": "x"}) is None
    assert aiokafka({}) == {"security_protocol": "PLAINTEXT"}


def test_tls_with_the_ca_and_a_client_certificate() -> None:
    credentials = faust_credentials({"security.protocol": "SSL", **MUTUAL})
    assert isinstance(credentials, SSLCredentials)
    context = credentials.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1  # our CA, not the system's
    assert aiokafka({"security.protocol": "SSL", **MUTUAL})["security_protocol"] == "SSL"


def test_host_name_and_certificate_checks_can_be_turned_off_as_in_librdkafka() -> None:
    lenient = faust_credentials({"security.protocol": "SSL", "ssl.ca.location": CA,
                                 "ssl.endpoint.identification.algorithm": "none"})
    assert isinstance(lenient, SSLCredentials)
    assert not lenient.context.check_hostname
    assert lenient.context.verify_mode == ssl.CERT_REQUIRED
    blind = faust_credentials({"security.protocol": "SSL", "enable.ssl.certificate.verification": "false"})
    assert isinstance(blind, SSLCredentials)
    assert blind.context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "scram-sha-512"])
def test_sasl_over_tls(mechanism: str) -> None:
    overrides = {"security.protocol": "SASL_SSL", "sasl.mechanisms": mechanism, "sasl.username": "esr",
                 "sasl.password": "pw", "ssl.ca.location": CA}
    credentials = faust_credentials(overrides)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.ssl_context is not None
    args = credentials_to_aiokafka_auth(credentials)
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == mechanism.upper()
    assert (args["sasl_plain_username"], args["sasl_plain_password"]) == ("esr", "pw")
    assert args["ssl_context"] is credentials.ssl_context


def test_sasl_without_tls_and_kerberos() -> None:
    plain = aiokafka({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u",
                      "sasl.password": "p"})
    assert (plain["security_protocol"], plain["ssl_context"]) == ("SASL_PLAINTEXT", None)
    kerberos = faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.kerberos.service.name": "kfk"})
    assert isinstance(kerberos, GSSAPICredentials)  # librdkafka's default mechanism
    assert kerberos.kerberos_service_name == "kfk"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"security.protocol": "TLS"}, "ESR_KAFKA_SECURITY_PROTOCOL=TLS is not one of"),
    ({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u"},
     "SASL SCRAM-SHA-512 needs ESR_KAFKA_SASL_PASSWORD"),
    ({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}, "OAUTHBEARER is not supported"),
    ({"security.protocol": "SSL", "ssl.keystore.location": "/k.p12"}, "ESR_KAFKA_SSL_KEYSTORE_LOCATION"),
    ({"security.protocol": "SSL", "ssl.ca.location": "/no/such/ca.pem"}, "ESR_KAFKA_SSL_CA_LOCATION=/no/such"),
    ({"security.protocol": "SSL", "ssl.certificate.location": CERT}, "go together"),
    ({"security.protocol": "SSL", **MUTUAL, "ssl.key.password": "wrong"}, "client certificate"),
])
def test_settings_the_worker_cannot_honour_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError, match=message):
        faust_credentials(overrides)


def test_faust_settings_and_the_output_producer_use_the_same_variables(tmp_path: Path) -> None:
    overrides = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "esr",
                 "sasl.password": "pw", "ssl.ca.location": CA}
    settings = Settings(data_dir=tmp_path, kafka_overrides=overrides)
    conf = faust_settings(settings, "kafka:9093", worker_id="w", tuning=Tuning())
    credentials = conf["broker_credentials"]
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("esr", "SCRAM-SHA-512")
    producer = output_config(settings, "kafka:9093", "w")  # librdkafka: the properties as they are
    assert {key: producer[key] for key in overrides} == overrides
    assert "broker_credentials" not in faust_settings(Settings(data_dir=tmp_path, kafka_overrides={}), "kafka:9093",
                                                      worker_id="w", tuning=Tuning())
