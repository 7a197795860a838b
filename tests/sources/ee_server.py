"""A loopback Earth Engine REST server for the real `ee` client (tests only).

Serves the discovery document and algorithms list (tests/data/ee, from the earthengine-api
wheel), and answers `POST .../image:computePixels` with NPY bytes of a structured array, one
field per requested band, on the requested grid. `algorithms_error` makes the algorithms list
(the call `ee.Initialize` makes) answer an error instead, as for an unregistered project. `script` holds canned answers that come first:
("error", code, message), ("raw", bytes) or ("raw-error", code, bytes); then every band gets
`fill(band, grid)`, unless the server holds `assets` ({asset id: [Asset, ...] for a
collection, or an Asset for an image}): then the expression is evaluated on them
(tests/sources/ee_graph.py), so the pixels follow from the recipe, and what Earth Engine
would refuse (an unknown band or asset) is its 400.
`POST /token` is an OAuth token endpoint for service-account keys whose `token_uri` points
here: it answers `minted_token`. Every request records its Authorization header.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np

from tests.loopback import LoopbackServer, QuietHandler
from tests.sources.ee_graph import GraphError, compute_pixels

DATA = Path(__file__).resolve().parents[1] / "data" / "ee"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class EEServer(LoopbackServer):
    def __init__(self, dtype_of=lambda band: "<u2", fill=None, assets: dict | None = None):
        self.requests: list[dict] = []
        self.assets = assets
        self.script: list[tuple] = []
        self.algorithms_error: tuple[int, str] | None = None  # e.g. an unregistered project
        self.minted_token = "ya29.loopback-minted-token"
        self.dtype_of = dtype_of
        self.fill = fill or (lambda band, h, w: np.full((h, w), 1000 + hash(band) % 100))
        self.discovery = gzip.decompress((DATA / "cloud_api_discovery_document.json.gz")
                                         .read_bytes())
        self.algorithms = gzip.decompress((DATA / "algorithms.json.gz").read_bytes())
        server = self

        class Handler(QuietHandler):

            def do_GET(self):
                server.requests.append({"method": "GET", "path": self.path,
                                        "auth": self.headers.get("Authorization")})
                if self.path.startswith("/$discovery/rest"):
                    return self.send_body(200, server.discovery, "application/json")
                if self.path.split("?")[0].endswith("/algorithms"):
                    if server.algorithms_error:
                        code, message = server.algorithms_error
                        err = {"error": {"code": code, "message": message,
                                         "status": STATUS.get(code, "UNKNOWN")}}
                        return self.send_body(code, json.dumps(err).encode(), "application/json")
                    return self.send_body(200, server.algorithms, "application/json")
                self.send_body(404, b'{"error": {"code": 404, "message": "not found", '
                                b'"status": "NOT_FOUND"}}', "application/json")

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n) or b"{}"
                if self.path.split("?")[0] == "/token":  # a service-account JWT grant
                    server.requests.append({"method": "POST", "path": self.path, "body": raw,
                                            "auth": None})
                    tok = {"access_token": server.minted_token, "expires_in": 3600,
                           "token_type": "Bearer"}
                    return self.send_body(200, json.dumps(tok).encode(), "application/json")
                body = json.loads(raw)
                server.requests.append({"method": "POST", "path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                if not self.path.split("?")[0].endswith("/image:computePixels"):
                    return self.send_body(404, b"{}", "application/json")
                if server.script:
                    kind, *rest = server.script.pop(0)
                    if kind == "error":
                        code, message = rest
                        err = {"error": {"code": code, "message": message,
                                         "status": STATUS.get(code, "UNKNOWN")}}
                        return self.send_body(code, json.dumps(err).encode(), "application/json")
                    if kind == "raw":
                        return self.send_body(200, rest[0], "application/octet-stream")
                    if kind == "raw-error":  # any status with any body (hostile answers)
                        code, body = rest
                        return self.send_body(code, body, "application/json")
                grid = body["grid"]
                w, h = grid["dimensions"]["width"], grid["dimensions"]["height"]
                if server.assets is not None:
                    try:
                        arr = compute_pixels(body["expression"], server.assets, (h, w),
                                             body.get("bandIds"))
                    except GraphError as e:
                        err = {"error": {"code": 400, "message": str(e),
                                         "status": "INVALID_ARGUMENT"}}
                        return self.send_body(400, json.dumps(err).encode(), "application/json")
                else:
                    bands = body.get("bandIds") or ["b"]
                    arr = np.zeros((h, w), dtype=[(b, server.dtype_of(b)) for b in bands])
                    for b in bands:
                        arr[b] = server.fill(b, h, w)
                buf = io.BytesIO()
                np.save(buf, arr)
                self.send_body(200, buf.getvalue(), "application/octet-stream")

        super().__init__(Handler)

    def pixel_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].split("?")[0].endswith(":computePixels")]
