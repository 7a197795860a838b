"""One lifecycle for the loopback HTTP servers tests run in place of real services.

Each stand-in (Earth Engine's REST API, ASF's CMR and downloads, the s1-orbits service) speaks
the real wire format to the real client library; what they share is how they live: a stdlib
`ThreadingHTTPServer` (one thread per connection) bound to 127.0.0.1 on a port the OS picks
(port 0, so parallel tests never collide), served from a daemon thread. `with server:` starts
it; leaving the block stops `serve_forever`, closes the listening socket and joins the thread.

Subprocess mode, for benchmarks that keep a big server's memory out of the process they
measure: the server module's `__main__` calls `serve_until_stdin_closes`, which prints one
JSON line (url, host and the server's facts) and serves until its stdin closes; the benchmark
side is `spawn(module, *args)`, a context manager that yields that line, parsed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers a whole body in one call."""

    def log_message(self, *a: object) -> None:
        pass

    def send_body(self, code: int, body: bytes, ctype: str,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer:
    """An HTTP server on 127.0.0.1:<free port> answering with `handler`; a context manager."""

    #: True for servers that cut connections on purpose: a client hanging up is then no error
    quiet_errors = False

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        quiet = self.quiet_errors

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not quiet:
                    super().handle_error(request, client_address)

        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.port: int = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Serve from a daemon thread (a second call does nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                            name=f"{type(self).__name__}:{self.port}")
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port; safe on a server never started."""
        if self._thread is not None:
            self.httpd.shutdown()  # returns once serve_forever has left its loop
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_until_stdin_closes(server: LoopbackServer, **facts: Any) -> None:
    """The subprocess side: one JSON line (url, host, facts) on stdout, then serve until EOF."""
    with server:
        print(json.dumps({"url": server.url, "host": server.host, **facts}), flush=True)
        sys.stdin.read()


@contextmanager
def spawn(module: str, *args: str, cwd: Path = ROOT, timeout: float = 60.0,
          ) -> Iterator[dict[str, Any]]:
    """Run `python -m module args...` (a server calling `serve_until_stdin_closes`) and yield
    its JSON line; on exit close its stdin and wait for it (killed after `timeout` s)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} exited with {proc.wait(timeout)} before serving")
        yield json.loads(line)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@contextmanager
def moto_s3(bucket: str, cache_home: Path) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 with `bucket` made, reached through the standard AWS
    variables (set in os.environ for the block, restored after), as a user would for any
    S3-compatible service; XDG_CACHE_HOME points at `cache_home`."""
    import logging

    import pytest

    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL_S3": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "moto-key",
           "AWS_SECRET_ACCESS_KEY": "moto-secret", "AWS_DEFAULT_REGION": "us-east-1",
           "XDG_CACHE_HOME": str(cache_home)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    try:
        s3fs.S3FileSystem().makedirs(bucket, exist_ok=True)
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()
