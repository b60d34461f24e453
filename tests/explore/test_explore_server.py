"""``cnnlab explore`` as a command: its one-line errors, and a real server over HTTP."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from cli_helpers import assert_one_line_error, run_cli
from explore_helpers import start_server


def test_port_in_use_is_one_line_and_status_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_cli(capsys, "explore", "lenet5", "--port", port, "--no-browser")
    assert_one_line_error(status, err, "expected a free port", f"--port {port}", "in use")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["nosuchnet"], ["unknown model 'nosuchnet'"]),
        (["lenet5", "--port", "70000"], ["port from 0 to 65535", "70000"]),
        (["lenet5", "--host", "203.0.113.7"], ["an address this machine can serve on"]),
        (["does/not/exist.safetensors"], ["does/not/exist.safetensors"]),
    ],
)
def test_bad_command_lines_are_one_line_and_status_2(capsys, argv, fragments):
    status, _, err = run_cli(
        capsys, "explore", *argv, "--no-browser", *(["--port", "0"] * ("--port" not in argv))
    )
    assert_one_line_error(status, err, *fragments)


def request(url: str, body: dict | None = None, host: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_local_server_refuses_other_host_names_and_stops_on_ctrl_c():
    server = start_server(["-m", "cnnlab", "explore", "lenet5", "--port", "0", "--no-browser"])
    url = server.url
    try:
        assert url.startswith("http://127.0.0.1:")
        assert not any("warning" in line for line in server.lines), server.lines
        assert request(url + "api/model")[0] == 200
        status, body = request(url + "api/model", host="attacker.example")  # DNS rebinding
        assert status == 400 and "attacker.example" in body["error"]
        status, body = request(url + "api/forward", {"input": {"kind": "example", "index": 0}})
        assert status == 400 and "untrained" in body["error"]
        assert request(url + "api/model")[0] == 200  # still serving
    finally:
        status = server.stop()
    assert status == 130  # Ctrl+C, as every cnnlab command
    assert server.lines[-1] == "cnnlab: interrupted"
    assert not any("Traceback" in line for line in server.lines), server.lines


def test_all_interfaces_are_served_with_a_warning():
    argv = ["-m", "cnnlab", "explore", "lenet5", "--host", "0.0.0.0", "--port", "0", "--no-browser"]
    server = start_server(argv)
    try:
        warnings = [line for line in server.lines if line.startswith("cnnlab: warning:")]
        assert len(warnings) == 1 and "0.0.0.0" in warnings[0], server.lines
        assert "authentication" in warnings[0]
        assert request(server.url + "api/model", host="lab-machine.example")[0] == 200
    finally:
        server.stop()
