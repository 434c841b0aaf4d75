"""RedisServer, the real redis-server under the tests that need Redis: it stores and answers,
a pause makes clients time out until it resumes, a kill and restart on the same port gives an
empty server, and a paused server still stops."""

from __future__ import annotations

import pytest
import redis

from redis_server import RedisServer


def test_set_and_get(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}"
    with redis.Redis.from_url(redis_url) as client:
        assert client.set("stratum:key", "value")
        assert client.get("stratum:key") == b"value"


def test_flush_empties_it(redis_server: RedisServer, redis_url: str) -> None:
    with redis_server.client() as client:
        client.set("left-over", "1")
    redis_server.flush()
    with redis_server.client() as client:
        assert client.dbsize() == 0


def test_pause_times_out_clients_until_resume(redis_server: RedisServer, redis_url: str) -> None:
    with redis_server.client(socket_timeout=0.2) as client:
        assert client.ping()
        redis_server.pause()
        try:
            with pytest.raises(redis.TimeoutError):
                client.get("anything")
        finally:
            redis_server.resume()
        assert client.ping()  # the client reconnects once the server answers again
        assert client.set("after-pause", "1")


def test_kill_and_restart_on_the_same_port_is_empty() -> None:
    with RedisServer() as server:
        port = server.port
        with server.client(socket_timeout=1.0) as client:
            client.set("before-kill", "1")
            server.kill()
            assert not server.running()
            with pytest.raises(redis.ConnectionError):
                client.ping()
            server.restart()
            assert server.port == port and server.url == f"redis://127.0.0.1:{port}"
            assert client.ping()
            assert client.dbsize() == 0


def test_stop_works_while_paused() -> None:
    with RedisServer() as server:
        server.pause()
        server.stop()
        assert not server.running()
        assert server.process is not None and server.process.returncode == 0  # SIGTERM, not SIGKILL
