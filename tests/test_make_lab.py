"""`make lab` really serves JupyterLab: started on a free port with a token, then stopped."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

# While the other test worker trains models on a 2-core machine, starting the server alone took
# about 60 s (its log showed it serving after that), and its first answer may take seconds more.
START_TIMEOUT_S = 180
ANSWER_TIMEOUT_S = 10
# The server is on this machine: never ask a proxy that the environment names (a proxy set by
# an earlier test in the same process once made every request go unanswered).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_lab_serves_jupyterlab(repo_root, tmp_path):
    port, token = _free_port(), "course-test-token"
    lab_args = f"--no-browser --ip=127.0.0.1 --IdentityProvider.token={token}"
    log = (tmp_path / "make_lab.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"PORT={port}", f"LAB_ARGS={lab_args}"],
        cwd=repo_root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={name: value for name, value in os.environ.items()
             if name.lower() not in ("http_proxy", "https_proxy")},
    )
    try:
        deadline, status = time.monotonic() + START_TIMEOUT_S, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/status?token={token}"
                with DIRECT.open(url, timeout=ANSWER_TIMEOUT_S) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        if status != 200:
            log.flush()
            why = (f"`make lab` exited with status {process.returncode}"
                   if process.poll() is not None else f"no answer in {START_TIMEOUT_S} s")
            tail = (tmp_path / "make_lab.log").read_text()[-3000:]
            raise AssertionError(f"JupyterLab did not answer /api/status ({why}, after "
                                 f"{time.monotonic() - started:.0f} s); its log ends:\n{tail}")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
