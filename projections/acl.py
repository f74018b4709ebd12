"""Least-privilege Redis ACL rules for the worker (its namespace, read-write) and the dashboard (read-only)."""

from __future__ import annotations

from projections.keys import pointer_key

# The commands each one sends (measured with INFO commandstats over the public scenarios, live:
# README, "Kafka and Redis security"); the Lua commit runs its writes inside EVAL/EVALSHA, and the
# ACL checks the keys a script touches as well.
WORKER_COMMANDS = ("get", "mget", "set", "mset", "del", "unlink", "hget", "hmget", "hset", "hgetall", "hdel",
                   "sadd", "srem", "smembers", "smismember", "zadd", "zrangebyscore", "zcard", "zcount", "rpush",
                   "lrange", "xadd", "expire", "eval", "evalsha", "script|load", "ping", "hello")
DASHBOARD_COMMANDS = ("get", "mget", "hgetall", "smembers", "xread", "ping", "hello")


def worker_rules(namespace: str, topic_prefix: str = "") -> str:
    """The worker's ACL rules: read-write on its namespace and its dedupe and clock keys, read-only
    on the live pointer, and only the commands it sends."""
    keys = (f"~{namespace}:* ~tierstream:{{dedupe:{topic_prefix}}}* ~tierstream:{{clock:{topic_prefix}}}* "
            f"%R~{pointer_key(namespace)}")
    return f"resetkeys {keys} resetchannels -@all " + " ".join(f"+{c}" for c in WORKER_COMMANDS)


def dashboard_rules(namespace: str) -> str:
    """The dashboard's: read-only on its namespace and the pointer."""
    keys = f"%R~{namespace}:* %R~{pointer_key(namespace)}"
    return f"resetkeys {keys} resetchannels -@all " + " ".join(f"+{c}" for c in DASHBOARD_COMMANDS)


def acl_line(user: str, rules: str) -> str:
    """The `ACL SETUSER` line a deployment runs (the password left for it to fill in)."""
    return f"ACL SETUSER {user} on >PASSWORD {rules}"


def refused_line(exc: Exception, user_role: str, namespace: str, topic_prefix: str = "") -> str:
    """One line for a command Redis refused (NoPermissionError): what it refused, and the key
    patterns and commands the role's user needs (Redis names the command, but never the key)."""
    rules = dashboard_rules(namespace) if user_role == "dashboard" else worker_rules(namespace, topic_prefix)
    keys = " ".join(r for r in rules.split() if "~" in r)
    what = str(exc).strip().rstrip(".") or type(exc).__name__
    return (f"Redis refused a command (ACL): {what}; the {user_role} user of namespace {namespace!r} needs the key "
            f"patterns {keys} and the commands of `ACL SETUSER` in the README (\"Kafka and Redis security\")")
