"""Credentials never reach an output, through any channel they can be given by.

Each case runs `refresh` (debug logging, a JSON log) and `status --failed` in a subprocess
against the loopback Earth Engine or ASF server, with credentials given one way: Earth
Engine a token (env, source option) or a service-account key (GOOGLE_APPLICATION_CREDENTIALS,
EE_SERVICE_ACCOUNT_KEY, source option); Earthdata a username/password (env), a token (env) or
~/.netrc (HOME pointed at a temp dir). The servers check that the credential was used; then
every output is scanned for the secrets (also base64-encoded, as a Basic header carries them):
stdout, stderr, the JSON log, every file of the store (attributes included), the state DB and
its journal, the download cache, the orbit folder, TMPDIR, and HOME with its XDG cache,
config, data and state folders (where defaults put caches and state), less the credential
files the test itself placed there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.sources.asf_server import FakeAsf, umm_item
from tests.sources.ee_server import EEServer

EE_TOKEN = "ya29.EEsecretTOKEN-4c1d9e"
EDL_USER, EDL_PASS = "edluser-k2", "EDLpassw0rd-7f3a9c"
EDL_TOKEN = "eyJEDLsecretTOKEN.b81f"


def _service_account_key(path: Path, token_uri: str) -> tuple[str, list[str]]:
    """A real RSA service-account key file whose token endpoint is the loopback server."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    kid = "9f3c0ffee1d2c3b4a5968778695a4b3c2d1e0f11"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": kid,
        "private_key": pem, "client_email": "m3leo@p.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": token_uri}))
    body = "".join(pem.splitlines()[1:-1])
    # the key's body in slices (any of them leaking is a leak), and its id
    return str(path), [body[i:i + 40] for i in range(0, len(body) - 40, 200)] + [kid]


def _run(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], env=env, cwd=cwd,
                          text=True, capture_output=True, timeout=240)


def _base_env(home: Path) -> dict:
    """HOME, the XDG cache and TMPDIR in the test's folder, so every default place the
    program (or a library it calls) may write is one the scan reads."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EARTHDATA_", "EE_", "GOOGLE_", "NETRC", "XDG_"))}
    tmp = home.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_STATE_HOME=str(home / ".local/state"), TMPDIR=str(tmp),
               PYTHONPATH=os.getcwd())
    return env


def _scan(secrets: list[str], texts: dict[str, str], roots: list[Path]) -> list[str]:
    """Where any secret (or its base64 form) shows up."""
    needles: dict[bytes, str] = {}
    for s in secrets:
        needles[s.encode()] = s
        needles[base64.b64encode(s.encode())] = f"base64({s})"
    needles[base64.b64encode(f"{EDL_USER}:{EDL_PASS}".encode())] = "basic auth header"
    found = []
    for name, text in texts.items():
        found += [f"{name}: {v}" for k, v in needles.items() if k in text.encode()]
    n = 0
    for root in roots:
        for p in [root] if root.is_file() else sorted(root.rglob("*")):
            if p.is_file():
                n += 1
                data = p.read_bytes()
                found += [f"{p}: {v}" for k, v in needles.items() if k in data]
                found += [f"{p} (name): {v}" for k, v in needles.items() if k in str(p).encode()]
    assert n >= 5, f"scanned only {n} files: the run wrote nothing?"
    return found


#: files the test itself put under HOME (a credential given by file is in it by design)
HOME_INPUTS = (".netrc",)


def _outputs(work: Path) -> list[Path]:
    """Everything the run could have written: the working folder (store, state, log, cache,
    TMPDIR) and HOME with its XDG cache/config/data/state, less the test's own inputs."""
    home = work / "home"
    return [p for p in work.iterdir() if p.name not in ("home", "inputs")] + [
        p for p in home.rglob("*") if p.is_file() and p.relative_to(home).as_posix()
        not in HOME_INPUTS]


# about 8 s each: one channel in the fast suite, the others with --runslow
EE_CASES = ["env-token", pytest.param("key-google-env", marks=pytest.mark.slow),
            pytest.param("option-token", marks=pytest.mark.slow),
            pytest.param("key-ee-env", marks=pytest.mark.slow),
            pytest.param("key-option", marks=pytest.mark.slow)]


@pytest.mark.parametrize("channel", EE_CASES)
def test_earth_engine_credentials_never_written(tmp_path, channel):
    work, home, inputs = tmp_path, tmp_path / "home", tmp_path / "inputs"
    home.mkdir()
    inputs.mkdir()
    (inputs / "a.wkt").write_text("POLYGON((2 48, 2.03 48, 2.03 48.03, 2 48.03, 2 48))")
    with EEServer(fill=lambda band, h, w: np.full((h, w), 1234)) as server:
        env = _base_env(home)
        secrets = [EE_TOKEN]
        extra_cfg, fetch_opts = "", []
        if channel.startswith("key"):
            key, parts = _service_account_key(inputs / "key.json", f"{server.url}/token")
            secrets = parts + [server.minted_token]
            if channel == "key-google-env":
                env["GOOGLE_APPLICATION_CREDENTIALS"] = key
            elif channel == "key-ee-env":
                env["EE_SERVICE_ACCOUNT_KEY"] = key
            else:  # the command line (fetch) and the config file (refresh)
                extra_cfg, fetch_opts = f'credentials = "{key}"\n', [
                    "--source-opt", f"earthengine.credentials={key}"]
        elif channel == "env-token":
            env["EE_ACCESS_TOKEN"] = EE_TOKEN
        else:
            extra_cfg, fetch_opts = f'access_token = "{EE_TOKEN}"\n', [
                "--source-opt", f"earthengine.access_token={EE_TOKEN}"]
        cfg = inputs / "m3leo.toml"  # an input: paths relative to it
        cfg.write_text(f"""store = "../s.zarr"
log = "../refresh.log"
[[job]]
region = "a.wkt"
modalities = ["dem", "s2"]
period = "2021-JJA"
source = "earthengine"
[sources.earthengine]
project = "p"
url = "{server.url}"
{extra_cfg}""")
        runs = {}
        if fetch_opts:  # the command-line channel: fetch, with the secret in argv
            runs["fetch"] = _run(["-vv", "fetch", "--region", "inputs/a.wkt", "-m", "dem",
                                  "--store", "s.zarr", "--ee-project", "p", "--source-opt",
                                  f"earthengine.url={server.url}", *fetch_opts], env, work)
            assert runs["fetch"].returncode == 0, runs["fetch"].stderr[-2000:]
        runs["refresh"] = _run(["-vv", "refresh", "--config", str(cfg)], env, work)
        assert runs["refresh"].returncode == 0, runs["refresh"].stderr[-2000:]
        runs["status"] = _run(["status", "--store", "s.zarr", "--failed"], env, work)
        pixels = server.pixel_requests()
        assert pixels, "no computePixels request reached the server"
        want = server.minted_token if channel.startswith("key") else EE_TOKEN
        assert all(r["auth"] == f"Bearer {want}" for r in pixels)
        if channel.startswith("key"):
            assert any(r["path"] == "/token" for r in server.requests)
    assert (work / "refresh.log").stat().st_size > 0
    texts = {f"{k}.{s}": getattr(p, s) for k, p in runs.items() for s in ("stdout", "stderr")}
    assert "DEBUG" in texts["refresh.stderr"]  # the most talkative logging was on
    leaks = _scan(secrets, texts, _outputs(work))
    assert not leaks, leaks


# each runs search, two downloads and the SAR processor (30-45 s): slow
ASF_CASES = [pytest.param(c, marks=pytest.mark.slow) for c in ("env-password", "env-token",
                                                                "netrc")]


@pytest.mark.parametrize("channel", ASF_CASES)
def test_earthdata_credentials_never_written(tmp_path, channel):
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    from m3leo_tiles.s1.archive import scan_archive
    from tests.sources.test_asf_archive import SLC, _zip_safe

    if not SLC.is_dir():
        pytest.skip("shared s1data not present")
    work, home, inputs = tmp_path, tmp_path / "home", tmp_path / "inputs"
    home.mkdir()
    inputs.mkdir()
    dem = inputs / "flat.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=200, height=100, count=1,
                       dtype="float32", crs="EPSG:4326",
                       transform=from_origin(-129.0, 52.5, 0.01, 0.01)) as d:
        d.write(np.full((1, 100, 200), 100, np.float32))
    (inputs / "a.wkt").write_text(shapely.box(-128.2, 52.0, -128.15, 52.03).wkt)
    env = _base_env(home)
    secrets = [EDL_PASS, EDL_TOKEN]
    with FakeAsf() as asf:
        for p in scan_archive(SLC):
            z = _zip_safe(SLC / f"{p.name}.SAFE", inputs)
            md5 = asf.add_file(z.name, z.read_bytes())
            asf.items.append(umm_item(p, asf.base, size=z.stat().st_size, md5=md5))
        if channel == "env-token":
            asf.token = EDL_TOKEN
            env["EARTHDATA_TOKEN"] = EDL_TOKEN
        else:
            asf.basic = (EDL_USER, EDL_PASS)
            if channel == "env-password":
                env.update(EARTHDATA_USERNAME=EDL_USER, EARTHDATA_PASSWORD=EDL_PASS)
            else:
                netrc = home / ".netrc"
                netrc.write_text(f"machine urs.earthdata.nasa.gov login {EDL_USER} "
                                 f"password {EDL_PASS}\n")
                netrc.chmod(0o600)
        cfg = inputs / "m3leo.toml"  # an input: paths relative to it
        cfg.write_text(f"""store = "../s.zarr"
log = "../refresh.log"
[[job]]
region = "a.wkt"
modalities = ["s1coh"]
period = "2025-04"
source = "asf"
[sources.asf]
host = "{asf.host}"
burst = false
cache = "../cache"
orbits = "../orbits"
dem = "{dem}"
""")
        runs = {"refresh": _run(["-vv", "refresh", "--config", str(cfg)], env, work)}
        runs["status"] = _run(["status", "--store", "s.zarr", "--failed"], env, work)
        gets = [(path, h) for m, path, h in asf.requests if m == "GET" and "/data/" in path]
        assert gets, runs["refresh"].stderr[-3000:]
        if channel == "env-token":
            assert all(h.get("Authorization") == f"Bearer {EDL_TOKEN}" for _, h in gets)
        else:
            assert all(h.get("Authorization", "").startswith("Basic ") for _, h in gets)
    # the products were downloaded and the processor ran (each tile fails on the fixture's
    # empty measurement TIFFs): the failure reasons went into the state DB and the log
    assert len(list((work / "cache").glob("*.zip"))) == 2
    assert "failed" in runs["status"].stdout
    texts = {f"{k}.{s}": getattr(p, s) for k, p in runs.items() for s in ("stdout", "stderr")}
    leaks = _scan(secrets + [EDL_USER] if channel != "env-token" else secrets, texts,
                  _outputs(work))
    assert not leaks, leaks
