"""Warm start (bert_ablation.warm): a job script runs in a fork of the warm server exactly as
`python <script>` would (argv, cwd, environment, streams, exit status), and stops with its job."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bert_ablation import warm

ROOT = Path(__file__).resolve().parents[1]

# What the job reports about where it runs: before importing anything heavy, a warm fork already
# holds torch (the server imported it); a cold process does not.
JOB = """\
import os, sys
from bert_ablation.warm import run_in_warm_process
run_in_warm_process()
warm = "torch" in sys.modules
print(f"warm={warm} cwd={os.getcwd()} argv={sys.argv[1:]} colour={os.environ.get('COLOUR')} pid={os.getpid()}")
print("to stderr", file=sys.stderr)
if sys.argv[1] == "raise":
    raise ValueError("the job failed")
if sys.argv[1] == "sleep":
    open("pid", "w").write(str(os.getpid()))
    import time; time.sleep(120)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    saved = os.environ.get(warm.SOCKET_ENV)
    process = warm.start(str(folder), str(folder / "warm_server.log"))
    path = os.environ[warm.SOCKET_ENV]
    deadline = time.monotonic() + 180  # the imports: ~7 s on an idle core
    while not os.path.exists(path):
        assert process.poll() is None, (folder / "warm_server.log").read_text()
        assert time.monotonic() < deadline, "the warm server did not start listening"
        time.sleep(0.2)
    yield {"process": process, "path": path, "log": folder / "warm_server.log"}
    warm.stop(process)
    if saved is not None:
        os.environ[warm.SOCKET_ENV] = saved


def _job(tmp_path: Path, *args: str, socket_path: str | None, **popen):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k not in (warm.SOCKET_ENV, warm.CHILD_ENV)}
    env.update(COLOUR="teal", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    if socket_path:
        env[warm.SOCKET_ENV] = socket_path
    command = [sys.executable, str(script), *args]
    if popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, **popen)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_job_runs_in_a_fork_with_its_own_argv_cwd_environment_streams_and_status(server, tmp_path):
    result = _job(tmp_path, "3", socket_path=server["path"])
    assert result.returncode == 3
    assert f"warm=True cwd={tmp_path} argv=['3'] colour=teal" in result.stdout
    assert result.stderr == "to stderr\n"
    forked = int(result.stdout.split("pid=")[1])
    assert f"job {forked}: {tmp_path / 'job.py'}" in server["log"].read_text()


def test_without_a_server_the_job_runs_in_its_own_process(tmp_path):
    result = _job(tmp_path, "0", socket_path=None)
    assert result.returncode == 0 and f"warm=False cwd={tmp_path} argv=['0'] colour=teal" in result.stdout


def test_a_server_that_is_gone_leaves_the_job_to_run_cold(tmp_path):
    result = _job(tmp_path, "0", socket_path=str(tmp_path / "no-such-socket"))
    assert result.returncode == 0 and "warm=False" in result.stdout


def test_a_job_whose_stdin_is_closed_runs_in_its_own_process(server, tmp_path):
    """Snakemake started with its stdin closed: the socket would take fd 0 and be handed to the fork
    as its stdin (keeping the connection open after the job process died); the job runs cold."""
    script = tmp_path / "job.py"
    script.write_text(JOB)
    env = {**os.environ, warm.SOCKET_ENV: server["path"], "COLOUR": "teal",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop(warm.CHILD_ENV, None)
    result = subprocess.run(f"exec 0<&- ; {sys.executable} {script} 0", shell=True, cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "warm=False" in result.stdout and result.stderr == "to stderr\n"


def test_a_broken_request_leaves_the_server_serving(server, tmp_path):
    """A job process killed mid-handshake (here: a header promising more than it sends) costs the
    server nothing: the next job still runs in a fork."""
    import socket
    import struct
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(server["path"])
    socket.send_fds(client, [struct.pack("!I", 1000)], [0, 1, 2])
    client.sendall(b'{"script": ')
    client.close()
    result = _job(tmp_path, "0", socket_path=server["path"])
    assert result.returncode == 0 and "warm=True" in result.stdout
    assert server["process"].poll() is None and "request failed" in server["log"].read_text()


def test_a_failing_job_prints_its_traceback_and_exits_1(server, tmp_path):
    result = _job(tmp_path, "raise", socket_path=server["path"])
    assert result.returncode == 1
    assert "ValueError: the job failed" in result.stderr and "warm=True" in result.stdout


def test_stopping_the_job_process_stops_its_fork(server, tmp_path):
    job = _job(tmp_path, "sleep", socket_path=server["path"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "pid").exists():
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.1)
    forked = int((tmp_path / "pid").read_text())
    assert forked != job.pid  # the work ran in the server's fork, not in the job process
    job.send_signal(signal.SIGTERM)  # what Snakemake does to a job it cancels
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while _alive(forked):
        assert time.monotonic() < deadline, "the fork outlived its job"
        time.sleep(0.1)


def test_stop_ends_the_server_and_removes_its_socket(tmp_path):
    saved = os.environ.get(warm.SOCKET_ENV)
    process = warm.start(str(tmp_path), str(tmp_path / "warm_server.log"))
    path = os.environ[warm.SOCKET_ENV]
    deadline = time.monotonic() + 180
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    warm.stop(process)
    assert process.returncode is not None and not os.path.exists(path) and warm.SOCKET_ENV not in os.environ
    if saved is not None:
        os.environ[warm.SOCKET_ENV] = saved


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by the server) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False
