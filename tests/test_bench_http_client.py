"""bench http's open-loop client: whole responses read, connections kept alive and reused
as a load balancer's pool does, a new one per request with --keepalive 0."""

from __future__ import annotations

import asyncio

from bench.http import Pool, offer_load


class _Offer:
    def next(self):
        return "ping", "GET", "/ping", {}, b""


async def _serve(close_after: bool, chunked: bool = False):
    """A tiny HTTP/1.1 server: (server, the connections it accepted, requests served)."""
    seen = {"connections": 0, "requests": 0}

    async def handle(reader, writer):
        seen["connections"] += 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            seen["requests"] += 1
            body = b'{"ok": true}'
            headers = ["HTTP/1.1 200 OK", "Content-Type: application/json"]
            if chunked:
                headers.append("Transfer-Encoding: chunked")
                payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
            else:
                headers.append(f"Content-Length: {len(body)}")
                payload = body
            wants_close = close_after or b"connection: close" in head.lower()
            if wants_close:
                headers.append("Connection: close")
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + payload)
            await writer.drain()
            if wants_close:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def _run(keepalive: int, close_after: bool, chunked: bool = False):
    async def go():
        server, seen = await _serve(close_after, chunked)
        port = server.sockets[0].getsockname()[1]
        async with server:
            results, _seconds = await offer_load(port, _Offer(), 200, 0.1, 5, keepalive)
        return results, seen

    return asyncio.run(go())


def test_keep_alive_reuses_connections_and_reads_whole_responses():
    results, seen = _run(keepalive=4, close_after=False)
    assert len(results) == 20 and {status for _k, status, _ms, _lag in results} == {200}
    assert seen["requests"] == 20 and seen["connections"] < 20
    results, seen = _run(keepalive=4, close_after=False, chunked=True)
    assert {status for _k, status, _ms, _lag in results} == {200}
    assert seen["connections"] < 20


def test_a_connection_per_request_without_keep_alive_or_when_the_server_closes():
    for keepalive, close_after in ((0, False), (4, True)):
        results, seen = _run(keepalive=keepalive, close_after=close_after)
        assert {status for _k, status, _ms, _lag in results} == {200}
        assert seen["requests"] == seen["connections"] == 20


def test_the_pool_keeps_at_most_its_idle_connections():
    class _Writer:
        closed = False

        def close(self):
            self.closed = True

    pool = Pool(port=1, idle=1)
    first, second = (None, _Writer()), (None, _Writer())
    pool.give_back(first)
    pool.give_back(second)
    assert len(pool.free) == 1 and second[1].closed and not first[1].closed
