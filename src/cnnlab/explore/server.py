"""Serving the explorer: bind the address, start uvicorn, open the browser.

The port is bound here, before uvicorn starts, so a port in use is one clear line (and exit
status 2 from the CLI) instead of a log trace. Binds 127.0.0.1 unless told otherwise; any
other address is announced with a warning, since the page has no authentication.
"""

from __future__ import annotations

import errno
import importlib.util
import ipaddress
import socket
import sys
import threading
import time
import warnings
import webbrowser
from collections.abc import Callable
from pathlib import Path

from cnnlab.errors import ConfigError, expected

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
#: Below this many MACs per image the server computes on one thread: a request is far too
#: small to share between threads, and on a busy machine waiting for a second thread costs
#: far more than it saves (see benchmarks/explore_latency.py).
ONE_THREAD_MACS = 50_000_000
#: Seconds the browser-opening thread waits for the server to start.
BROWSER_WAIT = 30.0


def require_server_packages() -> None:
    """Raise one line naming the extra when Starlette or uvicorn is missing.

    Raises:
        ConfigError: a package of the ``explore`` extra is not installed.
    """
    for module in ("starlette", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                "expected the explore extra (pip install 'cnnlab[explore]'), "
                f"received no module named {module!r}"
            )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port), ready for uvicorn.

    Raises:
        ConfigError: a port out of range, a port in use, or an address this machine lacks.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(expected("a port from 0 to 65535", port=port))
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(expected("a host name or address", host=f"{host} ({exc})")) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"expected a free port, received --port {port}, which is in use on {host} "
                "(choose another with --port, or --port 0 for any free one)"
            ) from None
        raise ConfigError(
            expected("an address this machine can serve on", host=host, port=port)
            + f" ({exc.strerror})"
        ) from None
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(
    target: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    checkpoint: str = "best",
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Serve the explorer for a run, checkpoint or registered model until interrupted.

    Args:
        target: run directory, ``.safetensors`` checkpoint, registered model name or
            ``path/to/file.py:callable`` (untrained models are initialised from seed 0).
        host: address to bind; anything but the loopback draws a warning.
        port: port to bind (0: any free port; the URL printed names it).
        open_browser: open the page in the default browser once the server is up.
        checkpoint: ``best`` or ``last`` checkpoint of a run directory.
        cache_dir: dataset cache for the run's test split.
        log: where the one-line announcements go (default: stderr).

    Raises:
        ConfigError: the explore extra is missing, or the address cannot be bound.
        CheckpointError / ModelError: a target that cannot be loaded or run.
    """
    require_server_packages()
    import torch
    import uvicorn

    from cnnlab.explore.api import create_app
    from cnnlab.explore.explorer import Explorer
    from cnnlab.explore.target import load_target

    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    sock = bind(host, port)
    try:
        explorer = Explorer(load_target(target, checkpoint=checkpoint), cache_dir=cache_dir)
        if explorer.summary.macs < ONE_THREAD_MACS:
            torch.set_num_threads(1)
        local = is_loopback(host)
        if not local:
            warnings.warn(
                f"--host {host} makes the explorer reachable from other machines, without any "
                "authentication; use it only on a network you trust",
                stacklevel=2,
            )
        app = create_app(explorer, allowed_hosts=LOOPBACK_NAMES if local else None)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        url = _url(host, sock.getsockname()[1])
        what = "untrained " if not explorer.target.trained else ""
        say(f"cnnlab explore: {what}{explorer.target.name} ({target}) at {url} (Ctrl+C stops it)")
        if open_browser:
            threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
        server.run(sockets=[sock])
    finally:
        sock.close()


def _open_when_started(server: object, url: str) -> None:
    deadline = time.monotonic() + BROWSER_WAIT
    while not getattr(server, "started", False):
        if time.monotonic() > deadline or getattr(server, "should_exit", False):
            return
        time.sleep(0.05)
    webbrowser.open(url)
