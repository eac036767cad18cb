"""A vendor server for benchmarks that costs next to nothing per request.

``pipestatus.testing`` is an ``aiohttp.web`` application: routing, a middleware, request
records, payloads rendered and JSON-encoded per request, an ETag hashed per answer. That is
about 200 us of CPU per request, more than a raw aiohttp client spends, so a benchmark against
it measures the server. This one answers from bytes prepared once:

1. it starts ``python -m pipestatus.testing`` (the simulated server, with its static pipelines)
   in a subprocess, asks it once for every answer a benchmark will need (v4 latest-jobs of
   repository 1000, pipelines 1..N; Yunxiao ``latestPipelineRun`` "1".."N"; the v5 batch answers
   of "p0001".."pN" in chunks of ``BATCH_SIZE``, keyed by the exact request body), keeps each
   answer's status, ``Content-Type``, ``ETag`` and body, and stops the subprocess;
2. it serves those bytes from a bare ``asyncio.Protocol`` HTTP/1.1 keep-alive server on
   127.0.0.1: per request it finds the end of the head, reads the request line, the
   ``Content-Length`` (for POST bodies), checks the vendor's token header and ``If-None-Match``
   (a 304 prepared too), and writes one prepared ``bytes``. No routing table, no records,
   no JSON, no allocation beyond the slices.

``GET /stats`` answers ``{"cpu": <time.process_time()>, "requests": <count>}`` so a benchmark
can print the server's CPU per request beside its ratios.

Run: ``python benchmarks/_server.py --repo 10000 --yunxiao 10000 --v5 10000 --token T``; the
first stdout line is the URL (after recording, which takes a few seconds); SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Final

import aiohttp

REPO_ID: Final = 1000
V5_PROJECT: Final = "proj"
#: The batch size the v5 adapter uses by default; bodies are keyed by it.
BATCH_SIZE: Final = 100
CONCURRENCY: Final = 32

_REASONS: Final = {200: b"OK", 304: b"Not Modified", 400: b"Bad Request", 401: b"Unauthorized"}
_REASONS_404: Final = b"Not Found"


def v4_path(pipeline: int) -> str:
    return f"/v4/repositories/{REPO_ID}/pipelines/{pipeline}/latest-jobs"


def yunxiao_path(pipeline: int) -> str:
    return f"/oapi/v1/flow/organizations/pipelines/{pipeline}/runs/latestPipelineRun"


V5_PATH: Final = f"/v5/{V5_PROJECT}/api/pipelines/status"


def v5_ids(n: int) -> list[str]:
    return [f"p{i:04d}" for i in range(1, n + 1)]


def v5_bodies(n: int) -> list[bytes]:
    """The request bodies of a poll of the first ``n`` v5 pipelines, as the adapter sends them."""
    ids = v5_ids(n)
    return [json.dumps(ids[i : i + BATCH_SIZE]).encode() for i in range(0, n, BATCH_SIZE)]


# --- prepared answers ----------------------------------------------------------------------------


def _answer(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    reason = _REASONS.get(status, _REASONS_404)
    head = [f"HTTP/1.1 {status} {reason.decode()}"]
    head += [f"{name}: {value}" for name, value in headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Prepared:
    """One recorded answer, and its 304 when it carries an ``ETag``."""

    __slots__ = ("etag", "full", "not_modified")

    def __init__(self, status: int, content_type: str, etag: str | None, body: bytes) -> None:
        headers = [("Content-Type", content_type)]
        if etag is not None:
            headers.append(("ETag", etag))
        self.full = _answer(status, headers, body)
        self.etag = etag.encode("latin-1") if etag is not None else None
        self.not_modified = _answer(304, [("ETag", etag)], b"") if etag is not None else None


async def record(
    source: str, token: str, repo: int, yunxiao: int, v5: int
) -> tuple[dict[bytes, Prepared], dict[bytes, Prepared]]:
    """Every answer a benchmark needs, asked once of the simulated server at ``source``.

    Returns the GET answers by path and the v5 POST answers by request body.
    """
    gets: dict[bytes, Prepared] = {}
    posts: dict[bytes, Prepared] = {}
    huawei = {"X-Auth-Token": token, "Accept": "application/json"}
    ali = {"x-yunxiao-token": token, "Accept": "application/json"}
    jobs: list[tuple[str, str, dict[str, str], bytes | None]] = [
        ("GET", v4_path(i), huawei, None) for i in range(1, repo + 1)
    ]
    jobs += [("GET", yunxiao_path(i), ali, None) for i in range(1, yunxiao + 1)]
    post_headers = {**huawei, "Content-Type": "application/json"}
    jobs += [("POST", V5_PATH, post_headers, body) for body in v5_bodies(v5)]
    queue = iter(jobs)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for method, path, headers, body in queue:
                async with session.request(
                    method, source + path, headers=headers, data=body
                ) as resp:
                    data = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"recording {method} {path}: {resp.status}")
                    prepared = Prepared(
                        resp.status,
                        resp.headers.get("Content-Type", "application/json"),
                        resp.headers.get("ETag"),
                        data,
                    )
                if body is None:
                    gets[path.encode()] = prepared
                else:
                    posts[body] = prepared

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return gets, posts


# --- serving -------------------------------------------------------------------------------------

_NOT_FOUND: Final = _answer(
    404,
    [("Content-Type", "application/json")],
    b'{"error_code": "BENCH.404", "error_msg": "not prepared"}',
)
_UNAUTHORIZED: Final = _answer(
    401,
    [("Content-Type", "application/json")],
    b'{"error_code": "BENCH.401", "error_msg": "token missing or wrong"}',
)
_BAD_REQUEST: Final = _answer(
    400, [("Content-Type", "application/json"), ("Connection", "close")], b"{}"
)


class Stats:
    __slots__ = ("requests",)

    def __init__(self) -> None:
        self.requests = 0


class PreparedProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive over prepared answers; see the module docstring."""

    __slots__ = ("_buffer", "_gets", "_posts", "_stats", "_tokens", "_transport")

    def __init__(
        self,
        gets: dict[bytes, Prepared],
        posts: dict[bytes, Prepared],
        tokens: tuple[bytes, bytes],
        stats: Stats,
    ) -> None:
        self._gets = gets
        self._posts = posts
        self._tokens = tokens
        self._stats = stats
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        buffer = self._buffer + data if self._buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()  # the target is matched lower-cased: our paths are
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                try:
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                except ValueError:
                    transport.write(_BAD_REQUEST)
                    transport.close()
                    return
            start = end + 4
            if len(buffer) < start + length:
                break
            body = buffer[start : start + length]
            buffer = buffer[start + length :]
            self._stats.requests += 1
            transport.write(self._answer(head, body))
        self._buffer = buffer

    def _answer(self, head: bytes, body: bytes) -> bytes:
        space = head.find(b" ")
        target = head[space + 1 : head.find(b" ", space + 1)]
        if head.startswith(b"post"):
            prepared = self._posts.get(body) if target == V5_PATH_LOWER else None
        elif target == b"/stats":
            cpu = json.dumps({"cpu": time.process_time(), "requests": self._stats.requests})
            return _answer(200, [("Content-Type", "application/json")], cpu.encode())
        else:
            prepared = self._gets.get(target)
        if prepared is None:
            return _NOT_FOUND
        if self._tokens[0] not in head and self._tokens[1] not in head:
            return _UNAUTHORIZED
        etag = prepared.etag
        if etag is not None and b"\r\nif-none-match: " + etag.lower() in head:
            assert prepared.not_modified is not None
            return prepared.not_modified
        return prepared.full


def _lower_keys(table: dict[bytes, Prepared]) -> dict[bytes, Prepared]:
    return {key.lower(): value for key, value in table.items()}


V5_PATH_LOWER: Final = V5_PATH.lower().encode()


def start_source(token: str, repo: int, yunxiao: int, v5: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "pipestatus.testing",
        "--repo",
        str(repo),
        "--yunxiao",
        str(yunxiao),
        "--v5",
        str(v5),
        "--token",
        token,
        "--port",
        "0",
    ]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60.0)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("http"):
        proc.kill()
        raise RuntimeError(f"pipestatus.testing did not print its URL: {line!r}")
    return proc, line


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def serve(args: argparse.Namespace) -> None:
    proc, source = start_source(args.token, args.repo, args.yunxiao, args.v5)
    try:
        gets, posts = await record(source, args.token, args.repo, args.yunxiao, args.v5)
    finally:
        stop(proc)
    gets = _lower_keys(gets)
    token = args.token.lower().encode()
    tokens = (b"\r\nx-auth-token: " + token, b"\r\nx-yunxiao-token: " + token)
    stats = Stats()
    gc.collect()
    gc.freeze()  # the prepared answers are never collected: keep the collector off them
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: PreparedProtocol(gets, posts, tokens, stats), "127.0.0.1", args.port
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"http://127.0.0.1:{port}\n")
    sys.stdout.flush()
    done = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, done.set)
    async with server:
        await done.wait()


# --- the benchmark's handle on it ---------------------------------------------------------------


class BenchServer:
    """This module run as a subprocess: started by ``start``, always stopped by ``close``."""

    def __init__(self, *, token: str, repo: int, yunxiao: int, v5: int) -> None:
        self.args = ["--token", token, "--repo", str(repo), "--yunxiao", str(yunxiao)]
        self.args += ["--v5", str(v5)]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0

    def start(self, timeout: float = 300.0) -> str:
        cmd = [sys.executable, __file__, *self.args]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"the benchmark server did not start within {timeout:g} s: {line!r}")
        self.url = line
        self.port = int(line.rsplit(":", 1)[1])
        return line

    async def stats(self) -> tuple[float, int]:
        """The server process's CPU seconds so far and the requests it has answered."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(b"GET /stats HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
        finally:
            writer.close()
            await writer.wait_closed()
        stats = json.loads(body)
        return float(stats["cpu"]), int(stats["requests"])

    def close(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="bench-token")
    parser.add_argument("--repo", type=int, default=1000, help="v4 pipelines 1000/1..N")
    parser.add_argument("--yunxiao", type=int, default=1000, help='Yunxiao pipelines "1".."N"')
    parser.add_argument("--v5", type=int, default=1000, help='v5 pipelines "p0001"..')
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
