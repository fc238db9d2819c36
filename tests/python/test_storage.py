# tests/python/test_storage.py
#
# The Redis fixtures the head-restart tests stand on: a server of the test's
# own, and one that keeps its data across a kill -9 and a restart.

import socket

from conftest import process_gone


def _command(url, *args):
    """Sends one command to the server at url; returns its reply: a bulk
    string's text (None for nil), else the reply's line ("+OK", ":1")."""
    host, port = url.removeprefix("redis://").split(":")
    request = f"*{len(args)}\r\n".encode()
    for a in args:
        a = a.encode()
        request += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        f = s.makefile("rb")
        line = f.readline().rstrip(b"\r\n")
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        return line.decode()


def test_redis_server_answers(redis_server):
    assert redis_server.startswith("redis://127.0.0.1:")
    assert _command(redis_server, "SET", "k", "v") == "+OK"
    assert _command(redis_server, "GET", "k") == "v"
    assert _command(redis_server, "GET", "none") is None


def test_persistent_redis_keeps_data_across_a_kill(persistent_redis):
    assert _command(persistent_redis.url, "HSET", "loom:kv", "k", "v") == ":1"
    pid = persistent_redis.proc.pid
    persistent_redis.restart()  # kill -9, then start on the same port
    assert process_gone(pid)
    assert _command(persistent_redis.url, "HGET", "loom:kv", "k") == "v"
    assert _command(persistent_redis.url, "HLEN", "loom:kv") == ":1"
