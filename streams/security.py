"""Kafka security for the Faust worker: the `ESR_KAFKA_*` librdkafka properties as Faust credentials.

Every librdkafka client of the project (ingest, sink, the worker's output producer, its recovery probe and
its trust-profile reader) takes the `ESR_KAFKA_*` properties as they are (`esr.kafka.config`). Faust's
consumer and changelog producer are aiokafka, which takes TLS and SASL as `broker_credentials` instead;
`faust_credentials` builds them from the same properties, so one set of variables configures both:

    security.protocol                      PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
    ssl.ca.location                        CA file (or directory) that signs the brokers' certificates
    ssl.certificate.location / ssl.key.location / ssl.key.password      client certificate (mutual TLS)
    ssl.endpoint.identification.algorithm  https (default: check the broker's host name) or none
    enable.ssl.certificate.verification    false: accept any broker certificate (tests only)
    sasl.mechanism(s)                      PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI (librdkafka's default)
    sasl.username / sasl.password          for PLAIN and SCRAM
    sasl.kerberos.service.name             for GSSAPI (default kafka)

Any other `ssl.*` or `sasl.*` property (a keystore, an OAuth callback, ...) has no aiokafka equivalent and is
refused, as are missing credentials and unreadable files: a worker that cannot honour its security
settings must not start and connect some other way. Properties outside security are left to librdkafka.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from pathlib import Path

from faust.auth import GSSAPICredentials, SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

_HANDLED = frozenset({
    "security.protocol", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.endpoint.identification.algorithm", "enable.ssl.certificate.verification", "sasl.mechanism",
    "sasl.mechanisms", "sasl.username", "sasl.password", "sasl.kerberos.service.name",
})


class SecurityConfigError(ValueError):
    """`ESR_KAFKA_*` security settings the Faust worker cannot honour."""


def _variable(name: str) -> str:
    return "ESR_KAFKA_" + name.upper().replace(".", "_")


def ssl_context(overrides: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context of the `ssl.*` properties (the system's CAs when no ssl.ca.location is given)."""
    ca = overrides.get("ssl.ca.location")
    try:
        if ca is not None and Path(ca).is_dir():
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, capath=ca)
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise SecurityConfigError(f"{_variable('ssl.ca.location')}={ca}: {exc}") from None
    certificate, key = overrides.get("ssl.certificate.location"), overrides.get("ssl.key.location")
    if (certificate is None) != (key is None):
        raise SecurityConfigError(f"{_variable('ssl.certificate.location')} and {_variable('ssl.key.location')} "
                                  "go together (the client certificate and its private key)")
    if certificate is not None:
        try:
            context.load_cert_chain(certificate, key, overrides.get("ssl.key.password"))
        except (OSError, ssl.SSLError) as exc:
            raise SecurityConfigError(f"client certificate {certificate} / key {key}: {exc}") from None
    if overrides.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    if overrides.get("enable.ssl.certificate.verification", "true").lower() == "false":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def faust_credentials(overrides: Mapping[str, str]) -> CredentialsT | None:
    """Faust's `broker_credentials` for the librdkafka `overrides` (None: plaintext)."""
    unknown = sorted(key for key in overrides if key.startswith(("ssl.", "sasl.")) and key not in _HANDLED)
    if unknown:
        raise SecurityConfigError(
            "no equivalent for the Faust worker (aiokafka): " + ", ".join(_variable(key) for key in unknown)
            + "; use PEM files (ssl.ca.location, ssl.certificate.location, ssl.key.location) and PLAIN/SCRAM/GSSAPI")
    protocol = overrides.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise SecurityConfigError(f"{_variable('security.protocol')}={protocol} is not one of {', '.join(PROTOCOLS)}")
    if protocol == "PLAINTEXT":
        ignored = sorted(key for key in overrides if key in _HANDLED and key != "security.protocol")
        if ignored:
            log.warning("security.protocol is PLAINTEXT: %s not used", ", ".join(map(_variable, ignored)))
        return None
    context = ssl_context(overrides) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        assert context is not None
        return SSLCredentials(context)
    mechanism = (overrides.get("sasl.mechanism") or overrides.get("sasl.mechanisms") or "GSSAPI").upper()
    if mechanism == "GSSAPI":
        return GSSAPICredentials(kerberos_service_name=overrides.get("sasl.kerberos.service.name", "kafka"),
                                 ssl_context=context, mechanism=mechanism)
    if mechanism not in PASSWORD_MECHANISMS:
        raise SecurityConfigError(f"{_variable('sasl.mechanism')}={mechanism} is not supported by the Faust worker "
                                  f"(one of {', '.join((*PASSWORD_MECHANISMS, 'GSSAPI'))})")
    missing = [_variable(key) for key in ("sasl.username", "sasl.password") if not overrides.get(key)]
    if missing:
        raise SecurityConfigError(f"SASL {mechanism} needs {' and '.join(missing)}")
    return SASLCredentials(username=overrides["sasl.username"], password=overrides["sasl.password"],
                           ssl_context=context, mechanism=mechanism)
