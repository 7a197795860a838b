"""The loopback servers' shared lifecycle: start on a free port, answer, shut down cleanly."""

from __future__ import annotations

import textwrap
import threading
import urllib.error
import urllib.request

import pytest

from tests.loopback import LoopbackServer, QuietHandler, spawn


class Hello(QuietHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_a_server_answers_inside_its_block_and_frees_its_port_after():
    with LoopbackServer(Hello) as a, LoopbackServer(Hello) as b:
        assert a.port != b.port and a.url == f"http://127.0.0.1:{a.port}"
        assert _get(a.url + "/x") == b"hello /x"
        assert _get(b.url + "/y") == b"hello /y"
        assert a.start() is a  # a second start is harmless
        names = {f"LoopbackServer:{a.port}", f"LoopbackServer:{b.port}"}
        assert names <= {t.name for t in threading.enumerate()}
    assert not names & {t.name for t in threading.enumerate()}  # serving threads joined
    with pytest.raises(urllib.error.URLError):
        _get(a.url + "/x")
    LoopbackServer(Hello).close()  # never started: closes at once instead of hanging


def test_subprocess_mode_reports_its_url_and_stops_when_stdin_closes(tmp_path):
    (tmp_path / "hello_server.py").write_text(textwrap.dedent("""
        from tests.loopback import LoopbackServer, serve_until_stdin_closes
        from tests.test_loopback import Hello

        serve_until_stdin_closes(LoopbackServer(Hello), answers="hello")
    """))
    with spawn("hello_server", cwd=tmp_path) as info:
        assert info["answers"] == "hello" and info["url"] == "http://" + info["host"]
        assert _get(info["url"] + "/z") == b"hello /z"
    with pytest.raises(urllib.error.URLError):
        _get(info["url"] + "/z")
