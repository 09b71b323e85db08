"""Starting an aiohttp server the way every workbench server starts: an AppRunner on a TCPSite,
port 0 allowed, the bound port returned. Never web.run_app: servers are objects we stop."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def start_site(app: web.Application, host: str, port: int,
                     shutdown_timeout: float) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = site._server  # the only place aiohttp keeps the bound socket
    assert isinstance(server, asyncio.Server) and server.sockets
    return runner, int(server.sockets[0].getsockname()[1])
