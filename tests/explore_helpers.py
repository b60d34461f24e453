"""Helpers of the explorer tests: decoding the API's base64 arrays, drawing a "1", and
starting a real server in a subprocess with bounded waits."""

from __future__ import annotations

import base64
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

import numpy as np

from process_helpers import interruptible


def uint8s(text: str, shape) -> np.ndarray:
    """A base64 uint8 array of the API."""
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


def floats(text: str, shape) -> np.ndarray:
    """A base64 little-endian float32 array of the API."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def stroke_of_one(size: int = 280) -> np.ndarray:
    """Ink of a "1" as a person draws it: a slightly slanted vertical stroke, 22 pixels wide."""
    ink = np.zeros((size, size), dtype=np.uint8)
    for y in range(40, size - 40):
        x = size // 2 + (y - 40) // 20
        ink[y, max(0, x - 11) : x + 11] = 255
    return ink


def drawing(ink: np.ndarray) -> dict:
    """The API's ``input`` for a drawing."""
    h, w = ink.shape
    return {"kind": "drawing", "width": w, "height": h, "data": base64.b64encode(ink).decode()}


# ---- a real server in a subprocess ----------------------------------------------------------
def free_port() -> int:
    """A port nothing listens on right now (bound once to port 0, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A ``cnnlab explore`` process: its URL and every stderr line it has written so far."""

    process: subprocess.Popen
    url: str
    lines: list[str]
    reader: threading.Thread

    def stop(self) -> int:
        """Stop the server (:func:`stop_server`) and read its last lines; its exit status."""
        status = stop_server(self.process)
        self.reader.join(timeout=10)
        return status


def start_server(argv: list[str], timeout: float = 120.0) -> Server:
    """Start ``python ARGV`` (a ``cnnlab explore`` command) and wait, at most ``timeout``
    seconds, until it announces its URL and answers ``GET /api/model``.

    Raises:
        AssertionError: the server exited or did not answer in time (it is stopped first).
    """
    process = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    lines: list[str] = []
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            found.put(lines[-1])
        found.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    url = None
    try:
        while url is None:
            try:
                line = found.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no URL from the server in {timeout} s: {lines}") from None
            if line is None:
                raise AssertionError(f"the server exited: {lines}")
            match = re.search(r" at (http://\S+/) ", line)
            url = match.group(1) if match else None
        while True:
            try:
                with urllib.request.urlopen(url + "api/model", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not answer at {url}: {lines}") from None
                time.sleep(0.2)
    except BaseException:
        stop_server(process)
        raise
    return Server(process, url, lines, reader)


def stop_server(process: subprocess.Popen, timeout: float = 60.0) -> int:
    """Interrupt the server (as Ctrl+C does), kill it if it has not ended in ``timeout``
    seconds; returns its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode
