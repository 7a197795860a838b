"""Earthdata Login for ASF downloads: credentials from the environment or ~/.netrc, and a
session that keeps them across the login redirects, only there. Credentials are never logged
or written (their repr hides them).
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..errors import AuthError

log = logging.getLogger(__name__)

EDL_HOST = "urs.earthdata.nasa.gov"
AUTH_HOSTS = (EDL_HOST, "auth.asf.alaska.edu", "sentinel1.asf.alaska.edu",
              "datapool.asf.alaska.edu", "cumulus.asf.alaska.edu")


@dataclass(frozen=True, repr=False)
class Credentials:
    """Earthdata Login: a bearer token or a username/password; repr never shows them."""

    username: str | None = None
    password: str | None = field(default=None)
    token: str | None = field(default=None)
    origin: str = ""

    def __repr__(self) -> str:
        return f"Credentials(from {self.origin or 'caller'}, hidden)"


def earthdata_credentials(env: Mapping[str, str] | None = None,
                          netrc_file: str | os.PathLike | None = None) -> Credentials | None:
    """EARTHDATA_TOKEN, else EARTHDATA_USERNAME/PASSWORD, else ~/.netrc for Earthdata Login."""
    env = os.environ if env is None else env
    if env.get("EARTHDATA_TOKEN"):
        return Credentials(token=env["EARTHDATA_TOKEN"], origin="EARTHDATA_TOKEN")
    if env.get("EARTHDATA_USERNAME") and env.get("EARTHDATA_PASSWORD"):
        return Credentials(env["EARTHDATA_USERNAME"], env["EARTHDATA_PASSWORD"],
                           origin="EARTHDATA_USERNAME/EARTHDATA_PASSWORD")
    path = Path(netrc_file) if netrc_file else Path(env.get("NETRC") or Path.home() / ".netrc")
    if path.is_file():
        try:
            auth = netrc.netrc(str(path)).authenticators(EDL_HOST)
        except (netrc.NetrcParseError, OSError) as e:
            log.warning("cannot read %s: %s", path, type(e).__name__)
            auth = None
        if auth and auth[0] and auth[2]:
            return Credentials(auth[0], auth[2], origin=str(path))
    return None


class EarthdataSession(requests.Session):
    """A session that keeps credentials across the Earthdata Login redirects, only there."""

    def __init__(self, creds: Credentials | None, auth_hosts: Sequence[str] = AUTH_HOSTS) -> None:
        super().__init__()
        self.trust_env = False  # no implicit netrc lookups for arbitrary hosts
        self._auth_hosts = set(auth_hosts)
        self._creds = creds
        if creds and creds.token:
            self.headers["Authorization"] = f"Bearer {creds.token}"
        elif creds and creds.username:
            self.auth = (creds.username, creds.password or "")

    def rebuild_auth(self, prepared_request, response):  # type: ignore[override]
        """Drop credentials on redirects to hosts outside Earthdata/ASF (requests' rule otherwise)."""
        host = urlparse(prepared_request.url).hostname
        if host in self._auth_hosts:
            if self._creds and self._creds.token:
                prepared_request.headers["Authorization"] = f"Bearer {self._creds.token}"
            return None
        return super().rebuild_auth(prepared_request, response)

    def __repr__(self) -> str:
        return "EarthdataSession(credentials hidden)"


def download_session(creds: Credentials | None = None, auth_hosts: Sequence[str] = AUTH_HOSTS,
                 require: bool = True) -> EarthdataSession:
    """A download session; `require` raises AuthError before any work when none are found."""
    creds = creds if creds is not None else earthdata_credentials()
    if creds is None and require:
        raise AuthError("no Earthdata Login credentials: set EARTHDATA_TOKEN, or "
                        "EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or add "
                        f"'machine {EDL_HOST} login ... password ...' to ~/.netrc")
    return EarthdataSession(creds, auth_hosts)
