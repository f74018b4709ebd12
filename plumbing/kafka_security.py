"""How every Kafka client authenticates and encrypts: one builder per library, from `KafkaSecurity`."""

from __future__ import annotations

import functools
import ssl
from typing import Any

from plumbing.settings import KafkaSecurity, Settings, SettingsError


@functools.lru_cache(maxsize=8)
def ssl_context(sec: KafkaSecurity) -> ssl.SSLContext:
    """The TLS context of `sec` (made once per settings: every connection of every client shares it)."""
    from aiokafka.helpers import create_ssl_context

    try:
        ctx: ssl.SSLContext = create_ssl_context(
            cafile=sec.ssl_cafile, certfile=sec.ssl_certfile, keyfile=sec.ssl_keyfile,
            password=str(sec.ssl_key_password) if sec.ssl_key_password else None)
    except (ssl.SSLError, OSError) as exc:
        # the message names the file, never the key's password
        raise SettingsError(f"Kafka TLS files unusable (CA {sec.ssl_cafile}, certificate {sec.ssl_certfile}, "
                            f"key {sec.ssl_keyfile}): {exc}") from None
    if not sec.ssl_check_hostname:  # the explicit opt-out: the chain is still verified
        ctx.check_hostname = False
    return ctx


def kafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient:
    the bootstrap servers and how to authenticate and encrypt (`**kafka_kwargs(settings)`)."""
    sec = settings.kafka_security
    kw: dict[str, Any] = {"bootstrap_servers": settings.kafka, "security_protocol": sec.protocol}
    if sec.tls:
        kw["ssl_context"] = ssl_context(sec)
    if sec.sasl:
        kw.update(sasl_mechanism=sec.sasl_mechanism, sasl_plain_username=sec.sasl_username,
                  sasl_plain_password=str(sec.sasl_password))
    return kw


def security_env(sec: KafkaSecurity) -> dict[str, str]:
    """The TIERSTREAM_KAFKA_* variables that give `sec` to a child process (every one set, so none
    leaks in from the parent's environment); `KafkaSecurity.from_env` reads them back equal."""
    return {"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": sec.protocol,
            "TIERSTREAM_KAFKA_SASL_MECHANISM": sec.sasl_mechanism or "",
            "TIERSTREAM_KAFKA_SASL_USERNAME": sec.sasl_username or "",
            "TIERSTREAM_KAFKA_SASL_PASSWORD": str(sec.sasl_password or ""),
            "TIERSTREAM_KAFKA_SSL_CAFILE": sec.ssl_cafile or "",
            "TIERSTREAM_KAFKA_SSL_CERTFILE": sec.ssl_certfile or "",
            "TIERSTREAM_KAFKA_SSL_KEYFILE": sec.ssl_keyfile or "",
            "TIERSTREAM_KAFKA_SSL_KEY_PASSWORD": str(sec.ssl_key_password or ""),
            "TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME": ("true" if sec.ssl_check_hostname else "false") if sec.tls else ""}


def faust_credentials(sec: KafkaSecurity) -> Any:
    """Faust's `broker_credentials` for the same settings (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    if sec.sasl:
        creds = SASLCredentials(username=sec.sasl_username, password=str(sec.sasl_password),
                                mechanism=sec.sasl_mechanism, ssl_context=ssl_context(sec) if sec.tls else None)
        return creds
    if sec.tls:
        return SSLCredentials(ssl_context(sec))
    return None


async def _first_connection(settings: Settings) -> BaseException | None:
    """Connect once to the first bootstrap server as every client would: the error, if any."""
    from aiokafka.conn import create_conn

    kw = kafka_kwargs(settings)
    host, _, port = settings.kafka.split(",")[0].strip().rpartition(":")
    try:
        conn = await create_conn(host.strip("[]"), int(port), security_protocol=kw["security_protocol"],
                                 ssl_context=kw.get("ssl_context"), sasl_mechanism=kw.get("sasl_mechanism", "PLAIN"),
                                 sasl_plain_username=kw.get("sasl_plain_username"),
                                 sasl_plain_password=kw.get("sasl_plain_password"), request_timeout_ms=5000)
    except Exception as exc:  # what the client's bootstrap only logged
        return exc
    conn.close()
    return None


def diagnose(settings: Settings) -> str:
    """Why a Kafka client could not bootstrap, in words: aiokafka logs the cause and raises a bare
    "Unable to bootstrap", which would read as "not running" when the password is wrong."""
    import asyncio

    from aiokafka.errors import SaslAuthenticationFailed

    sec = settings.kafka_security
    try:
        exc = asyncio.run(_first_connection(settings))
    except (SettingsError, ValueError) as bad:
        return str(bad)
    where = f"Kafka at {settings.kafka} ({sec.describe()})"
    if isinstance(exc, SaslAuthenticationFailed):
        return (f"{where} refused the credentials of user {sec.sasl_username!r}: check "
                "TIERSTREAM_KAFKA_SASL_USERNAME, TIERSTREAM_KAFKA_SASL_PASSWORD and TIERSTREAM_KAFKA_SASL_MECHANISM")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{where}: its TLS certificate is not trusted ({exc.verify_message}): set TIERSTREAM_KAFKA_SSL_CAFILE "
                "to the CA that signed it (or TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME=false for a name mismatch)")
    if isinstance(exc, ssl.SSLError):
        return f"{where}: the TLS handshake failed ({exc}); does the listener speak {sec.protocol}?"
    if exc is None:
        return f"{where} answers now, but did not a moment ago"
    return f"cannot reach {where} ({type(exc).__name__}: {exc})"
