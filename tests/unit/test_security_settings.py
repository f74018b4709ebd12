"""Kafka and Redis security settings: validated in one line, one builder for aiokafka and Faust, secrets never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from devstack import secure
from plumbing.kafka_security import faust_credentials, kafka_kwargs, security_env
from plumbing.redis_clients import RedisConfigError, cluster_seeds, tls_options
from plumbing.settings import KafkaSecurity, Settings, SettingsError, redact_url
from projections.acl import acl_line, dashboard_rules, refused_line, worker_rules

pytestmark = pytest.mark.unit
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate with its key, made as the secure devstack makes them (openssl)."""
    return secure.certificates(secure.SecureConfig(tmp_path_factory.mktemp("tls"), 0, 0, 0))


def sasl_ssl(tls: Path, **more: str) -> dict[str, str]:
    return {"TIERSTREAM_KAFKA": "broker:9093", "TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "TIERSTREAM_KAFKA_SASL_USERNAME": "worker", "TIERSTREAM_KAFKA_SASL_PASSWORD": "s3cret-kafka",
            "TIERSTREAM_KAFKA_SSL_CAFILE": str(tls / "ca.pem"), **more}


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = Settings.from_env({})
    assert kafka_kwargs(s) == {"bootstrap_servers": "localhost:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(s.kafka_security) is None


def test_sasl_ssl_gives_every_client_the_same_verified_context_and_login(tls: Path) -> None:
    s = Settings.from_env(sasl_ssl(tls))
    kw = kafka_kwargs(s)
    ctx = kw.pop("ssl_context")
    assert kw == {"bootstrap_servers": "broker:9093", "security_protocol": "SASL_SSL",
                  "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "worker",
                  "sasl_plain_password": "s3cret-kafka"}
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert kafka_kwargs(s)["ssl_context"] is ctx  # made once, shared


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT", "SSL"])
def test_faust_gets_what_aiokafka_gets(tls: Path, protocol: str) -> None:
    """Faust turns its credentials into aiokafka arguments itself: they must equal ours."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    env = sasl_ssl(tls, TIERSTREAM_KAFKA_SECURITY_PROTOCOL=protocol, TIERSTREAM_KAFKA_SASL_MECHANISM="SCRAM-SHA-256")
    if protocol == "SSL":
        env = {k: v for k, v in env.items() if "SASL" not in k}
    if protocol == "SASL_PLAINTEXT":
        env.pop("TIERSTREAM_KAFKA_SSL_CAFILE")
    s = Settings.from_env(env)
    ours = {k: v for k, v in kafka_kwargs(s).items() if k != "bootstrap_servers"}
    assert credentials_to_aiokafka_auth(faust_credentials(s.kafka_security)) == {
        "ssl_context": None, **ours} if protocol == "SASL_PLAINTEXT" else ours


def test_a_client_certificate_and_the_hostname_opt_out(tls: Path) -> None:
    s = Settings.from_env(sasl_ssl(tls, TIERSTREAM_KAFKA_SECURITY_PROTOCOL="SSL", TIERSTREAM_KAFKA_SASL_USERNAME="",
                                   TIERSTREAM_KAFKA_SASL_PASSWORD="",
                                   TIERSTREAM_KAFKA_SSL_CERTFILE=str(tls / "server.pem"),
                                   TIERSTREAM_KAFKA_SSL_KEYFILE=str(tls / "server.key"),
                                   TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME="false"))
    ctx = kafka_kwargs(s)["ssl_context"]
    assert not ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED  # the chain is still checked
    assert "sasl_mechanism" not in kafka_kwargs(s)


@pytest.mark.parametrize(("change", "message"), [
    ({"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "TIERSTREAM_KAFKA_SECURITY_PROTOCOL takes PLAINTEXT, SSL"),
    ({"TIERSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "TIERSTREAM_KAFKA_SASL_MECHANISM takes PLAIN, SCRAM-SHA-256"),
    ({"TIERSTREAM_KAFKA_SASL_PASSWORD": ""}, "needs TIERSTREAM_KAFKA_SASL_USERNAME and TIERSTREAM_KAFKA_SASL_PASSWORD"),
    ({"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "TIERSTREAM_KAFKA_SSL_CAFILE": ""},
     "TIERSTREAM_KAFKA_SASL_* are set but TIERSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL"),
    ({"TIERSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
     "TIERSTREAM_KAFKA_SSL_CAFILE is set but TIERSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use TLS"),
    ({"TIERSTREAM_KAFKA_SSL_CAFILE": "/nowhere/ca.pem"}, "TIERSTREAM_KAFKA_SSL_CAFILE=/nowhere/ca.pem: no readable"),
    ({"TIERSTREAM_KAFKA_SSL_CERTFILE": "/etc/hostname"},
     "TIERSTREAM_KAFKA_SSL_CERTFILE and TIERSTREAM_KAFKA_SSL_KEYFILE go"),
    ({"TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME takes true or false"),
])
def test_bad_security_settings_are_one_line_naming_the_variable(tls: Path, change: dict[str, str],
                                                                message: str) -> None:
    with pytest.raises(SettingsError) as exc:
        Settings.from_env(sasl_ssl(tls, **change))
    assert message in str(exc.value) and "\n" not in str(exc.value) and "s3cret" not in str(exc.value)


def test_an_unusable_ca_file_is_one_line_at_first_use(tls: Path) -> None:
    s = Settings.from_env(sasl_ssl(tls, TIERSTREAM_KAFKA_SSL_CAFILE=str(tls / "san.cnf")))
    with pytest.raises(SettingsError, match="Kafka TLS files unusable"):
        kafka_kwargs(s)


def test_settings_never_show_a_secret(tls: Path) -> None:
    s = Settings.from_env(sasl_ssl(tls, TIERSTREAM_REDIS="rediss://worker:s3cret-redis@h:6380/0?ssl_ca_certs=/x",
                                   TIERSTREAM_KAFKA_SSL_KEY_PASSWORD="s3cret-key"))
    for shown in (repr(s), str(s), repr(s.kafka_security), str(s.kafka_security)):
        assert "s3cret" not in shown
    assert "SASL_SSL as 'worker' (SCRAM-SHA-512)" in repr(s)
    assert str(s.kafka_security.sasl_password) == "s3cret-kafka"  # the value itself is still there to use


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
    ("rediss://:pw@h:1/0?ssl_ca_certs=/ca.pem", "rediss://:***@h:1/0?ssl_ca_certs=/ca.pem"),
    ("redis-cluster://u:p%40w@a:1,b:2", "redis-cluster://u:***@a:1,b:2"),
    ("rediss-cluster://pw@a:1,b:2", "rediss-cluster://***@a:1,b:2"),
    ("redis://h:1/0", "redis://h:1/0"),
])
def test_redact_url_takes_every_redis_url_form(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redis_tls_options_from_the_url(tls: Path) -> None:
    ca = tls / "ca.pem"
    assert tls_options(f"rediss://h:1/0?ssl_ca_certs={ca}") == {"ssl": True, "ssl_ca_certs": str(ca),
                                                                "ssl_check_hostname": True}
    assert tls_options("redis://h:1/0") == {}
    seeds = cluster_seeds(f"rediss-cluster://u:pw@a:1,b:2?ssl_ca_certs={ca}&ssl_check_hostname=false")
    assert seeds == ([("a", 1), ("b", 2)], {"username": "u", "password": "pw", "ssl": True, "ssl_ca_certs": str(ca),
                                            "ssl_check_hostname": False})
    with pytest.raises(RedisConfigError, match="ssl_ca_certs=/nowhere: no readable file"):
        tls_options("rediss://h:1/0?ssl_ca_certs=/nowhere")


def test_acl_rules_confine_each_user_to_its_namespace() -> None:
    w, d = worker_rules("live", "p-").split(), dashboard_rules("live").split()
    assert [r for r in w if "~" in r] == ["~live:*", "~tierstream:{dedupe:p-}*", "~tierstream:{clock:p-}*",
                                          "%R~tierstream:pointer:live"]
    assert [r for r in d if "~" in r] == ["%R~live:*", "%R~tierstream:pointer:live"]
    assert "-@all" in w and "+evalsha" in w and "+scan" not in w and "+flushall" not in w
    assert not any(r.startswith("+") and r[1:] in ("set", "del", "eval", "evalsha", "hset") for r in d)
    line = refused_line(Exception("no permissions to access one of the keys"), "worker", "live", "p-")
    assert "\n" not in line and "~live:*" in line and "no permissions to access one of the keys" in line


def test_the_readme_shows_both_acl_lines() -> None:
    text = README.read_text()
    assert acl_line("worker", worker_rules("live")) in text
    assert acl_line("dashboard", dashboard_rules("live")) in text


def test_the_secure_devstack_config_names_users_and_tls(tmp_path: Path) -> None:
    cfg = secure.SecureConfig(tmp_path, 19094, 19095, 16380)
    conf = secure.redis_conf(cfg, {f"redis.{u}": f"pw-{u}" for u in secure.REDIS_USERS},
                             {"worker": worker_rules("live"), "dashboard": dashboard_rules("live")})
    assert "port 0\n" in conf and "tls-port 16380\n" in conf and "user default off\n" in conf
    assert f"user worker on >pw-worker {worker_rules('live')}\n" in conf
    props = secure.broker_settings(cfg, {"kafka.admin": "pw-admin"})
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_a_child_process_gets_the_same_security(tls: Path, protocol: str) -> None:
    """`security_env` (what the worker's and the benches' child processes are given) reads back equal."""
    env = sasl_ssl(tls, TIERSTREAM_KAFKA_SECURITY_PROTOCOL=protocol, TIERSTREAM_KAFKA_SSL_CHECK_HOSTNAME="false")
    if "SSL" not in protocol.replace("SASL", ""):
        env = {k: v for k, v in env.items() if "_SSL_" not in k}
    if not protocol.startswith("SASL"):
        env = {k: v for k, v in env.items() if "SASL" not in k}
    sec = Settings.from_env(env).kafka_security
    assert KafkaSecurity.from_env(security_env(sec)) == sec
