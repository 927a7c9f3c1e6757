"""The hub gateway: the real ``huggingface_hub`` (and ``datasets``) client, through the egress
proxy and the real forwarder code, against a local server that speaks the hub's HTTP API
(``fake_hub.py``). The gateway's forbidden list is the catalog's for Qwen/Qwen3-4B-Base.

Nothing here may reach the real hub: ``HF_ENDPOINT`` is the gateway, the gateway's upstream is
the fake hub, and every test runs with a resolver that refuses the hub's names."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fake_hub import Blob, FakeHub
from posttrainbench.benchmarks import BENCHMARKS
from posttrainbench.catalog import BASE_MODELS, get_base_model
from posttrainbench.domain import NetworkPolicy, RunSpec
from posttrainbench.pipeline import Pipeline
from posttrainbench.sandbox import SandboxConfig
from posttrainbench.sandbox.egress import EgressProxy
from posttrainbench.sandbox.egress_bridge import _accept_loop
from posttrainbench.sandbox.hub_gateway import (
    GATEWAY_AUTHORITY,
    HubGateway,
    HubGatewaySpec,
    HubPathError,
    forbidden_repos,
    parse_hub_path,
)

BASE = "Qwen/Qwen3-4B-Base"
BIG = Blob(size=3 << 20)  # served through the CDN redirect


@pytest.fixture(autouse=True)
def _never_the_real_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def guarded(host, *a, **kw):
        h = (host.decode() if isinstance(host, bytes) else str(host)).lower().rstrip(".")
        if h in ("huggingface.co", "hf.co") or h.endswith((".huggingface.co", ".hf.co")):
            raise AssertionError(f"a test tried to reach the real hub: {host}")
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as h:
        h.add("model", "org/allowed-model", {
            "config.json": b'{"model_type": "llama"}', "model.safetensors": BIG, "sub/dir/notes.txt": b"nested",
        })  # fmt: skip
        h.add("model", BASE, {"config.json": b'{"base": true}'})
        h.add("model", "Qwen/Qwen3-4B", {"config.json": b'{"instruct": true}', "model.safetensors": Blob(size=4096)})
        h.add("dataset", "openai/gsm8k", {"main/test-00000-of-00001.parquet": b"PAR1 test answers"})
        h.add("dataset", "org/allowed-data", {"data/train.jsonl": b'{"q": "1+1", "a": "2"}\n{"q": "2+2", "a": "4"}\n'})
        h.rename("dataset", "someone/old-gsm8k", "openai/gsm8k")  # an alias the catalog does not know
        h.rename("model", "org/old-name", "org/allowed-model")
        yield h


@dataclass
class Gateway:
    url: str
    log: Path
    hub: FakeHub

    def lines(self) -> list[list[str]]:
        """The log's fields after the time stamp, once it stopped growing: the gateway writes a
        request's line after the last byte is sent, so the client can be faster than the log."""
        last, deadline = None, time.monotonic() + 5
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if text == last:
                break
            last = text
            time.sleep(0.1)
        return [ln.split("\t")[1:] for ln in (last or "").splitlines()]

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """One raw request: (status, headers, body)."""
        c = http.client.HTTPConnection(self.url.split("//")[1], timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        c.close()
        return out

    def upstream_saw(self, needle: str) -> bool:
        return any(needle.lower() in p.lower() for p in self.hub.paths_seen())


@contextlib.contextmanager
def serve_gateway(hub: FakeHub, log: Path, **spec: object) -> Iterator[Gateway]:
    """The proxy with the run's gateway, and a loopback port served by the forwarder's own loop
    (``CONNECT hub.ptb.invalid:80`` per connection): what ``HF_ENDPOINT`` reaches in a sandbox."""
    proxy = EgressProxy([], log)
    proxy.gateway = HubGateway(
        HubGatewaySpec.for_run(get_base_model(BASE), BENCHMARKS.values(), upstream=hub.url, **spec), log=proxy.log
    )
    with proxy:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        threading.Thread(
            target=_accept_loop, args=(listener, str(proxy.socket_path), GATEWAY_AUTHORITY), daemon=True
        ).start()
        yield Gateway(f"http://127.0.0.1:{listener.getsockname()[1]}", log, hub)
        listener.close()


@pytest.fixture
def gateway(hub: FakeHub, tmp_path: Path) -> Iterator[Gateway]:
    with serve_gateway(hub, tmp_path / "egress.log") as g:
        yield g


@pytest.fixture
def hf(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """``huggingface_hub`` pointed at the gateway, online (the suite sets HF_HUB_OFFLINE=1 for
    everything else; the constants are read at import). Xet stays enabled: the gateway must strip
    the Xet headers for downloads to work at all."""
    point_client_at(gateway.url, monkeypatch)
    return gateway


def point_client_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


# ----------------------------------------------------------------------------- path parsing
@pytest.mark.parametrize(
    ("path", "expect"),
    [
        ("/api/models/org/m", ("info", "model", "org/m", None, None, "/api/models/org/m")),
        ("/api/models/gpt2", ("info", "model", "gpt2", None, None, "/api/models/gpt2")),
        ("/api/datasets/o/d/revision/refs%2Fconvert%2Fparquet",
         ("revision", "dataset", "o/d", "refs/convert/parquet", None, "/api/datasets/o/d/revision/refs%2Fconvert%2Fparquet")),
        ("/api/models/o/m/tree/main/a%2Fb", ("tree", "model", "o/m", "main", "a/b", "/api/models/o/m/tree/main/a%2Fb")),
        ("/api/datasets/o/d/paths-info/abc", ("paths-info", "dataset", "o/d", "abc", None, "/api/datasets/o/d/paths-info/abc")),
        ("/api/datasets/o/d/parquet/default/train/0.parquet",
         ("parquet", "dataset", "o/d", None, "default/train/0.parquet", "/api/datasets/o/d/parquet/default/train/0.parquet")),
        ("/o/m/resolve/main/sub/f%20x.json", ("resolve", "model", "o/m", "main", "sub/f x.json", "/o/m/resolve/main/sub/f%20x.json")),
        ("/gpt2/resolve/main/config.json", ("resolve", "model", "gpt2", "main", "config.json", "/gpt2/resolve/main/config.json")),
        ("/datasets/o/d/resolve/v1.0/x.parquet", ("resolve", "dataset", "o/d", "v1.0", "x.parquet", "/datasets/o/d/resolve/v1.0/x.parquet")),
        ("/api/models/Qwen%2FQwen3-4B-Base/revision/main",
         ("revision", "model", "Qwen/Qwen3-4B-Base", "main", None, "/api/models/Qwen/Qwen3-4B-Base/revision/main")),
        ("/api/models/o/m/", ("info", "model", "o/m", None, None, "/api/models/o/m")),
        ("/api/resolve-cache/datasets/o/d/" + "a" * 40 + "/x/y.json",
         ("resolve-cache", "dataset", "o/d", "a" * 40, "x/y.json", "/api/resolve-cache/datasets/o/d/" + "a" * 40 + "/x/y.json")),
    ],
)  # fmt: skip
def test_hub_paths_are_parsed_and_re_encoded(path: str, expect: tuple) -> None:
    r = parse_hub_path(path)
    assert (r.endpoint, r.repo_type, r.repo_id, r.revision, r.file, r.upstream_path) == expect


@pytest.mark.parametrize(
    "path",
    [
        "/api/models", "/api/models?search=qwen", "/api/whoami-v2", "/api/repos/create", "/api/agent-harnesses",
        "/api/models/o/m/xet-read-token/main", "/api/models/o/m/commit/main", "/o/m/blob/main/f", "/o/m/raw/main/f",
        "/o/m", "/api/models/o/m/resolve", "/o/m/resolve/main", "/api/spaces", "/api/resolve-cache/models/o", "/api/resolve-cache/o/m/r/f",
    ],
)  # fmt: skip
def test_paths_that_name_no_repo_are_refused(path: str) -> None:
    with pytest.raises(HubPathError) as e:
        parse_hub_path(path.split("?")[0])
    assert e.value.status == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/models/o/../Qwen/Qwen3-4B", "/api/models/o/%2e%2e/Qwen/Qwen3-4B", "/o/m/resolve/main/..%2F..%2Fx",
        "/o/m/resolve/main/a/./b", "/api/models//Qwen/Qwen3-4B", "/o/m/resolve/main/a%zz", "/o/m/resolve/main/%00",
        "/o/m/resolve/main/a%5Cb", "/o/m/resolve/main/%ff", "relative/path", "/",
    ],
)  # fmt: skip
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(HubPathError) as e:
        parse_hub_path(path)
    assert e.value.status == 400


def test_every_reading_of_an_ambiguous_path_is_checked() -> None:
    assert ("dataset", "gsm8k") in parse_hub_path("/datasets/gsm8k/resolve/main/x").candidates
    assert ("dataset", "gsm8k") in parse_hub_path("/api/datasets/gsm8k/revision/main").candidates
    assert ("model", "Qwen/Qwen3-4B") in parse_hub_path("/api/models/Qwen%2FQwen3-4B").candidates
    assert ("model", "Qwen/Qwen3-4B") in parse_hub_path("/Qwen%2FQwen3-4B/resolve/main/config.json").candidates


def test_forbidden_repos_come_from_the_catalog_and_the_benchmarks() -> None:
    f = forbidden_repos(get_base_model(BASE), BENCHMARKS.values())
    assert {"Qwen/Qwen3-4B", "Qwen/Qwen3-4B-FP8", "Qwen/Qwen3-4B-Instruct-2507"} <= set(f.models)
    assert BASE not in f.models and "Qwen/Qwen3-1.7B" not in f.models  # only this base's counterparts
    assert {
        "openai/gsm8k",
        "gsm8k",
        "openai/openai_humaneval",
        "openai_humaneval",
        "Idavidrein/gpqa",
        "math-ai/aime25",
    } <= set(f.datasets)
    assert "gsm8k" in f.datasets["gsm8k"]
    demo = forbidden_repos(get_base_model("ptb/SmolLM2-135M"), [])
    assert demo.models == {
        "HuggingFaceTB/SmolLM2-135M-Instruct": "a forbidden checkpoint of the base model ptb/SmolLM2-135M"
    }
    assert demo.datasets == {}


def test_gateway_config_is_checked(tmp_path: Path) -> None:
    spec = HubGatewaySpec()
    with pytest.raises(ValueError, match="needs network=allowlist"):
        SandboxConfig(workspace=tmp_path, time_limit_s=5, hub_gateway=spec)
    with pytest.raises(ValueError, match="port is already used"):
        SandboxConfig(workspace=tmp_path, time_limit_s=5, network="allowlist", egress_log=tmp_path / "l",
                      egress_tunnels={spec.port: "a.b:1"}, egress_allow=["a.b:1"], hub_gateway=spec)  # fmt: skip
    with pytest.raises(ValueError):
        HubGatewaySpec(upstream="ftp://x")
    with pytest.raises(ValueError):
        HubGatewaySpec(forbidden_models={"../x": "no"})


# ----------------------------------------------------------------------------- the real client
def test_allowed_repos_download_through_the_gateway(hf: Gateway, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    cache = tmp_path / "cache"
    small = hf_hub_download("org/allowed-model", "config.json", cache_dir=cache)
    assert Path(small).read_bytes() == b'{"model_type": "llama"}'
    big = hf_hub_download("org/allowed-model", "model.safetensors", cache_dir=cache)  # HEAD + GET via the CDN redirect
    assert Path(big).read_bytes() == b"".join(BIG.chunks())
    snap = Path(snapshot_download("org/allowed-model", cache_dir=tmp_path / "snap"))
    assert (snap / "sub" / "dir" / "notes.txt").read_bytes() == b"nested" and (
        snap / "model.safetensors"
    ).stat().st_size == BIG.size
    api = HfApi()
    sha = hf.hub.repos[("model", "org/allowed-model")].sha
    assert api.model_info("org/allowed-model").sha == sha and api.model_info(BASE).sha
    assert api.dataset_info("org/allowed-data").sha == hf.hub.repos[("dataset", "org/allowed-data")].sha
    assert {f.path for f in api.list_repo_tree("org/allowed-model", recursive=True)} >= {
        "sub/dir/notes.txt",
        "config.json",
    }
    assert [p.path for p in api.get_paths_info("org/allowed-data", ["data/train.jsonl"], repo_type="dataset")] == [
        "data/train.jsonl"
    ]
    lines = hf.lines()
    gets = f"rev=main file=model.safetensors endpoint=resolve status=200 bytes={BIG.size} commit={sha}"
    assert ["ALLOW", "GET", "hub:model/org/allowed-model", gets] in lines
    assert [
        "ALLOW",
        "HEAD",
        "hub:model/org/allowed-model",
        f"rev=main file=config.json endpoint=resolve status=200 bytes=0 commit={sha}",
    ] in lines
    assert any(
        ln[:3] == ["ALLOW", "GET", "hub:model/org/allowed-model"] and f"rev={sha} file=sub/dir/notes.txt" in ln[3]
        for ln in lines
    )
    assert any(
        ln[:3] == ["ALLOW", "POST", "hub:dataset/org/allowed-data"] and "endpoint=paths-info" in ln[3] for ln in lines
    )


def test_xet_headers_are_stripped_and_links_point_at_the_gateway(hf: Gateway) -> None:
    status, headers, _ = hf.request("HEAD", "/org/allowed-model/resolve/main/model.safetensors")
    assert status == 200 and "location" not in headers  # the client never sees the CDN
    assert headers["x-repo-commit"] == hf.hub.repos[("model", "org/allowed-model")].sha
    assert headers["x-linked-size"] == str(BIG.size) and headers["x-linked-etag"] == f'"{BIG.sha256}"'
    assert not [k for k in headers if k.startswith("x-xet")]
    assert "xet" not in headers["link"] and headers["link"] == f'<{hf.url}/x>; rel="next"'
    status, headers, body = hf.request(
        "GET", "/org/allowed-model/resolve/main/model.safetensors", headers={"Range": "bytes=10-19"}
    )
    assert (
        status == 206 and body == b"".join(BIG.chunks(10, 20)) and headers["content-range"] == f"bytes 10-19/{BIG.size}"
    )


def test_an_allowed_rename_is_followed(hf: Gateway, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download

    p = hf_hub_download("org/old-name", "config.json", cache_dir=tmp_path)
    assert Path(p).read_bytes() == b'{"model_type": "llama"}'
    assert any(
        ln[2] == "hub:model/org/allowed-model" and "redirected-from=model/org/old-name" in ln[3] for ln in hf.lines()
    )


def test_forbidden_repos_are_refused_by_the_real_client(hf: Gateway, tmp_path: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    attempts = [
        lambda: hf_hub_download("Qwen/Qwen3-4B", "config.json", cache_dir=tmp_path),
        lambda: hf_hub_download("qwen/QWEN3-4b", "model.safetensors", cache_dir=tmp_path),
        lambda: snapshot_download("Qwen/Qwen3-4B", cache_dir=tmp_path),
        lambda: HfApi().model_info("Qwen/Qwen3-4B-FP8"),
        lambda: HfApi().dataset_info("openai/gsm8k"),
        lambda: HfApi().dataset_info("gsm8k"),  # the legacy name, known to the catalog
        lambda: HfApi().dataset_info("someone/old-gsm8k"),  # an alias the hub redirects: refused after the redirect
        lambda: hf_hub_download(
            "OpenAI/GSM8K", "main/test-00000-of-00001.parquet", repo_type="dataset", cache_dir=tmp_path
        ),
        lambda: list(HfApi().list_repo_tree("openai/gsm8k", repo_type="dataset")),
    ]
    for attempt in attempts:
        with pytest.raises((HfHubHTTPError, LocalEntryNotFoundError)) as e:
            attempt()
        chain = f"{e.value} {e.value.__cause__}"
        assert "403" in chain or "forbidden" in chain.lower() or "cannot find" in chain.lower(), chain
    assert not hf.upstream_saw("qwen/qwen3-4b/") and not hf.upstream_saw("qwen/qwen3-4b-fp8")
    assert not any(p.lower().rstrip("/").endswith("/qwen/qwen3-4b") for p in hf.hub.paths_seen())
    assert not hf.upstream_saw("openai/gsm8k") and not hf.upstream_saw("/gsm8k/")
    assert hf.upstream_saw("someone/old-gsm8k")  # asked once, the redirect was refused
    denied = [ln for ln in hf.lines() if ln[0] == "DENY"]
    assert len(denied) >= len(attempts)
    assert any(
        ln[2] == "hub:model/qwen/QWEN3-4b" and "file=model.safetensors" in ln[3] and "forbidden" in ln[3]
        for ln in denied
    )
    assert any(
        ln[2] == "hub:dataset/someone/old-gsm8k" and "redirected to dataset openai/gsm8k" in ln[3] for ln in denied
    )
    assert any(ln[2] == "hub:dataset/gsm8k" and "test data of benchmark gsm8k" in ln[3] for ln in denied)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/Qwen%2FQwen3-4B/resolve/main/config.json", 403),
        ("HEAD", "/Qwen%2fQwen3-4B/resolve/main/config.json", 403),
        ("GET", "/api/models/Qwen%2FQwen3-4B", 403),
        ("GET", "/api/models/QWEN/qwen3-4b/revision/main", 403),
        ("GET", "/api/models/org/allowed-model/../../Qwen/Qwen3-4B", 400),
        ("GET", "/org/allowed-model/..%2F..%2FQwen/Qwen3-4B/resolve/main/config.json", 400),
        ("GET", "/api/models/%2e%2e/Qwen/Qwen3-4B", 400),
        ("GET", "/datasets/gsm8k/resolve/main/main/test-00000-of-00001.parquet", 403),
        ("GET", "/datasets/openai/gsm8k/resolve/main/main/test-00000-of-00001.parquet", 403),
        ("GET", "/api/datasets/openai%2Fgsm8k/parquet", 403),
        ("POST", "/api/datasets/openai/gsm8k/paths-info/main", 403),
        ("GET", "/api/datasets/Idavidrein/gpqa/tree/main", 403),
        ("GET", "/api/resolve-cache/models/Qwen/Qwen3-4B/" + "0" * 40 + "/config.json", 403),
        ("GET", "/api/resolve-cache/datasets/gsm8k/" + "0" * 40 + "/x", 403),
        ("POST", "/api/repos/create", 403),
        ("PUT", "/api/models/org/allowed-model/commit/main", 403),
        ("DELETE", "/api/models/org/allowed-model", 405),
        ("POST", "/api/models/org/allowed-model/revision/main", 405),
        ("GET", "/api/whoami-v2", 403),
        ("GET", "/api/models?search=Qwen3-4B", 403),
    ],
)  # fmt: skip
def test_raw_attacks_on_the_gateway(gateway: Gateway, method: str, path: str, status: int) -> None:
    body = b"paths=x" if method in ("POST", "PUT") else None
    got, _headers, data = gateway.request(method, path, body=body)
    assert got == status, (got, data)
    if method != "HEAD":
        assert "ptb hub gateway" in json.loads(data)["error"]
    assert gateway.hub.requests == []  # nothing reached the hub
    (line,) = gateway.lines()[1:]  # after the tunnel's CONNECT line
    assert line[0] == "DENY" and line[1] == method and f"status={status}" in line[3]


def test_redirects_off_the_hub_are_refused(hf: Gateway) -> None:
    """A file may move to a CDN on the list only; an API answer may not move off the hub at all."""
    hf.hub.cdn_base = "https://cdn.evil.example"
    for method in ("HEAD", "GET"):
        status, _, data = hf.request(method, "/org/allowed-model/resolve/main/model.safetensors")
        assert status == 502 and (method == "HEAD" or b"not on the CDN list" in data)
    hf.hub.redirects["/api/models/org/allowed-model"] = f"{hf.hub.url}/cdn/{BIG.sha256}"
    status, _, data = hf.request("GET", "/api/models/org/allowed-model")
    assert status == 502 and b"redirected an API request off the hub" in data
    lines = hf.lines()
    assert sum("cdn.evil.example" in ln[3] for ln in lines) == 2 and "off the hub" in lines[-1][3]
    assert not any("evil" in p for p in hf.hub.paths_seen())


def test_a_cdn_on_another_origin_is_followed_by_the_gateway_only(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on the real hub, the CDN is another origin (here ``localhost`` for ``127.0.0.1``): the
    client's HEAD is answered from the hub's redirect (no other host), its GET streamed by the
    gateway; a CDN not on the gateway's list is refused."""
    from huggingface_hub import hf_hub_download

    hub.cdn_base = hub.url.replace("127.0.0.1", "localhost")
    cdn = hub.cdn_base.split("//")[1]
    with serve_gateway(hub, tmp_path / "egress.log", cdn_allow=(cdn,)) as g:
        point_client_at(g.url, monkeypatch)
        p = hf_hub_download("org/allowed-model", "model.safetensors", cache_dir=tmp_path / "c")
        assert Path(p).read_bytes() == b"".join(BIG.chunks())
        status, headers, _ = g.request("HEAD", "/org/allowed-model/resolve/main/model.safetensors")
        assert status == 200 and "location" not in headers and headers["x-linked-size"] == str(BIG.size)
    with serve_gateway(
        hub, tmp_path / "egress2.log", cdn_allow=(cdn.replace("localhost", "localhost.localdomain"),)
    ) as g:
        status, _, data = g.request("GET", "/org/allowed-model/resolve/main/model.safetensors")
        assert status == 502 and b"not on the CDN list" in data


def test_upstream_errors_pass_through(hf: Gateway, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "config.json", cache_dir=tmp_path)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/allowed-model", "missing.json", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/allowed-model", "config.json", revision="v9", cache_dir=tmp_path)
    assert any(ln[2] == "hub:model/org/missing" and "status=404" in ln[3] for ln in hf.lines())


def test_datasets_load_dataset_through_the_gateway(gateway: Gateway, tmp_path: Path) -> None:
    """``datasets.load_dataset`` in a fresh process configured only by the environment, as an agent
    would be: an allowed dataset loads, a benchmark's test set is refused."""
    code = (
        "import datasets\n"
        "ds = datasets.load_dataset('org/allowed-data', split='train')\n"
        "print('ROWS', ds.num_rows, ds[1]['a'])\n"
        "try:\n"
        "    datasets.load_dataset('openai/gsm8k', 'main', split='test'); print('REACHED')\n"
        "except Exception as e:\n"
        "    print('REFUSED', type(e).__name__, str(e)[:300].replace(chr(10), ' '))\n"
    )
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": gateway.url, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
        # Any attempt to go around the gateway dies on a closed proxy port.
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1",
    }  # fmt: skip
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "ROWS 2 4" in p.stdout, (p.stdout, p.stderr[-3000:])
    assert "REFUSED" in p.stdout and "REACHED" not in p.stdout, (p.stdout, p.stderr[-3000:])
    assert not gateway.upstream_saw("openai/gsm8k")
    assert any(
        ln[:3] == ["ALLOW", "GET", "hub:dataset/org/allowed-data"] and "file=data/train.jsonl" in ln[3]
        for ln in gateway.lines()
    )
    assert any(ln[0] == "DENY" and ln[2] == "hub:dataset/openai/gsm8k" for ln in gateway.lines())


# ----------------------------------------------------------------------------- end to end
AGENT = r"""
python - <<'EOF'
import os, urllib.request
from huggingface_hub import HfApi, hf_hub_download
print("endpoint", os.environ["HF_ENDPOINT"])
p = hf_hub_download("org/allowed-model", "model.safetensors", local_dir="dl")
print("allowed", os.path.getsize(p))
for name, fn in [
    ("model", lambda: hf_hub_download("org/instruct-model", "config.json", local_dir="dl2")),
    ("dataset", lambda: hf_hub_download("openai/gsm8k", "main/test-00000-of-00001.parquet", repo_type="dataset", local_dir="dl3")),
    ("alias", lambda: HfApi().dataset_info("gsm8k")),
    ("direct", lambda: urllib.request.urlopen("https://huggingface.co/api/models/gpt2", timeout=10)),
]:
    try:
        fn(); print("REACHED", name)
    except Exception as e:
        print("refused", name, type(e).__name__)
EOF
"""


def test_end_to_end_in_bwrap_with_network_allowlist(
    hub: FakeHub,
    tmp_path: Path,
    script_agent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scripted agent in the real bwrap sandbox: ``HF_ENDPOINT`` is the gateway; an allowed file
    downloads, the base's instruct model and a benchmark's test set (also by its legacy name) are
    refused, and the hub's host is not reachable around the gateway."""
    monkeypatch.setenv("PTB_HUB_UPSTREAM", hub.url)
    hub.add("model", "org/instruct-model", {"config.json": b"{}"})
    # The tiny test base (built locally) with an instruct counterpart on the fake hub.
    tiny = BASE_MODELS["ptb/tiny-random"]
    monkeypatch.setitem(BASE_MODELS, tiny.hub_id, tiny.model_copy(update={"instruct_id": "org/instruct-model"}))
    spec = RunSpec(agent=script_agent(AGENT), agent_config="x", base_model=tiny.hub_id,
                   benchmark="gsm8k-calc", hours=0.05, eval_limit=4, network=NetworkPolicy.allowlist)  # fmt: skip
    pipe = Pipeline(spec, tmp_path)
    record = pipe.run(until="collect")
    out = pipe.paths.solve_out.read_text()
    assert record.exit_code == 0, (out, pipe.paths.solve_err.read_text()[-3000:])
    assert "endpoint http://127.0.0.1:18090" in out and f"allowed {BIG.size}" in out, out
    assert (pipe.paths.workspace / "dl" / "model.safetensors").read_bytes() == b"".join(BIG.chunks())
    for name in ("model", "dataset", "alias", "direct"):
        assert f"refused {name}" in out, out
    assert "REACHED" not in out
    log = pipe.paths.egress_log.read_text()
    assert "ALLOW\tGET\thub:model/org/allowed-model\trev=main file=model.safetensors" in log, log
    assert "DENY\tHEAD\thub:model/org/instruct-model\t" in log and "DENY\tGET\thub:dataset/gsm8k\t" in log, log
    assert "DENY\tHEAD\thub:dataset/openai/gsm8k\t" in log, log
    assert "DENY\tCONNECT\thuggingface.co:443\tnot on the allow-list" in log, log
    assert not any("instruct-model" in p or "gsm8k" in p for p in hub.paths_seen()), hub.paths_seen()
    assert "hub gateway" in str(record.phases.solve.result().enforced["egress"])
