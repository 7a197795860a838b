"""A loopback stand-in for ASF's s1-orbits service and its public bucket (tests only).

The real service (https://s1-orbits.asf.alaska.edu, github.com/ASFHyP3/sentinel1-orbits)
answers `GET /scene/{scene}` with a redirect to the chosen EOF in the `s1-orbits` bucket
(`/AUX_POEORB/<name>.EOF` or `/AUX_RESORB/...`, a plain S3 GET), 400 for a name that is not
an S1 scene and 404 when no orbit covers it. The choice here is the service's own: POEORB
covering the scene +-60 s first, else the newest RESORB; knobs make it misbehave on purpose.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

from m3leo_tiles.s1.orbits import header_from_name
from tests.loopback import LoopbackServer, QuietHandler

_SCENE = re.compile(r"^(S1[ABCD])_..?_...._...._(\d{8}T\d{6})_(\d{8}T\d{6})_\d{6}_\w{6}_\w{4}$")


class FakeOrbits(LoopbackServer):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}  # bucket key -> body
        self.requests: list[str] = []
        self.wrong = False  # redirect to any file of the mission, covering or not
        self.fail = 0  # next N scene requests answer 503
        super().__init__(self._handler())

    def put(self, name: str, body: bytes) -> str:
        h = header_from_name(name)
        assert h is not None, name
        key = f"{h.kind}/{name}"
        self.objects[key] = body
        return key

    def choose(self, mission: str, start: dt.datetime, stop: dt.datetime) -> str | None:
        pad = dt.timedelta(seconds=60)
        heads = [(k, header_from_name(k)) for k in self.objects]
        heads = [(k, h) for k, h in heads if h and h.mission == mission]
        if self.wrong:
            return heads[0][0] if heads else None
        for kind in ("AUX_POEORB", "AUX_RESORB"):
            ok = [(h.created, k) for k, h in heads
                  if h.kind == kind and h.start <= start - pad and stop + pad <= h.stop]
            if ok:
                return max(ok)[1]
        return None

    def _handler(self):
        fake = self

        class H(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                url = urllib.parse.urlparse(self.path)
                if url.path.startswith("/scene/"):
                    if fake.fail > 0:
                        fake.fail -= 1
                        return self.send_body(503, b'{"message": "busy"}', "application/json")
                    m = _SCENE.match(url.path[len("/scene/"):])
                    if not m:
                        return self.send_body(400, b'{"detail": "invalid scene"}', "application/json")
                    t0, t1 = (dt.datetime.strptime(x, "%Y%m%dT%H%M%S") for x in m.group(2, 3))
                    key = fake.choose(m.group(1), t0, t1)
                    if key is None:
                        return self.send_body(404, b'{"detail": "no orbit"}', "application/json")
                    return self.send_body(302, b"", "text/plain", {"Location": f"{fake.url}/{key}"})
                key = url.path.lstrip("/")
                if key in fake.objects:
                    return self.send_body(200, fake.objects[key], "binary/octet-stream")
                return self.send_body(404, b"<Error><Code>NoSuchKey</Code></Error>",
                                  "application/xml")

        return H
