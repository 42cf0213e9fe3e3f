"""Warm start: jobs run in forks of one process that has imported torch and transformers once.

Every Snakemake ``script:`` job is a fresh Python process, and importing torch, transformers,
datasets and our training modules costs it ~4 s on an idle core (5-7 s beside another job): on
the default DAG's 129 jobs that is ~8-13 minutes of CPU, as much as a dozen pretraining runs.
With a local ``snakemake`` run, ``rules/common.smk`` starts one *warm server* (``serve``), which
imports all of that once and listens on a Unix socket. Each job script calls
``run_in_warm_process()`` first thing: it hands the server its script (Snakemake's temporary copy,
preamble included), working directory, environment and its stdin/stdout/stderr, the server
forks, and the fork runs the script exactly as ``python <script>`` would, in a copy of the
warm interpreter. The job process waits, relays Ctrl-C/termination to the fork, and exits with
the fork's status, so Snakemake sees one ordinary job.

Why a fork per job and not a pool of reused workers: each job starts from the same clean
interpreter (no state, threads, seeds or open files left by the job before), and the server
itself never runs torch, so its forks are safe: it holds one Python thread and has never started
torch's or OpenMP's thread pools when it forks (checked).

Without a server (a dry run, a cluster job, ``warm_start: false``, a rehearsal, or the server
not yet listening) ``run_in_warm_process()`` returns and the script runs in its own process, as
before. This module imports nothing heavy at module level: the job side must stay cheap.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SOCKET_ENV = "BERT_ABLATION_WARM_SOCKET"
CHILD_ENV = "BERT_ABLATION_WARM_CHILD"
# What a job imports that is worth paying once: the training loops (torch, transformers, our
# models and engine), the task data (datasets), the tables and figures (pandas, matplotlib).
PRELOAD = ("bert_ablation.training.pretrain", "bert_ablation.training.finetune", "bert_ablation.data.task_sources",
           "bert_ablation.data.instances", "bert_ablation.evaluation.tables", "bert_ablation.evaluation.claims",
           "bert_ablation.evaluation.plots", "snakemake.script")
_HEADER = struct.Struct("!I")
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the job's side

def run_in_warm_process() -> None:
    """Run this job script in a fork of the warm server and exit with its status; return (and
    let the script run here) when no server is reachable."""
    path = os.environ.get(SOCKET_ENV)
    if not path or os.environ.get(CHILD_ENV):
        return
    try:  # a closed standard stream: the socket below would take its number and be handed over as it
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
    except OSError:  # not listening (yet, or any more): a cold job is still a correct job
        client.close()
        return
    request = {"script": os.path.abspath(sys.argv[0]), "argv": sys.argv, "cwd": os.getcwd(),
               "env": dict(os.environ), "umask": _umask()}
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        _send(client, request, fds=[0, 1, 2])
        reply = _receive(client)
    except OSError:  # a closed standard stream cannot be passed on (EBADF): run here, as without a server
        reply = None
    if reply is None:
        client.close()
        return  # nothing forked (refused, a server shutting down, or the streams above): run here
    pid = reply["pid"]

    def relay(signum, _frame):  # Snakemake stops a job by signalling its process: stop the fork too
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, relay)
    reply = _receive(client)
    if reply is None:
        sys.exit(f"warm start: the server stopped while job process {pid} ran; rerun the job")
    os._exit(reply["exit"])  # the fork wrote the job's output and flushed its streams


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- framing (one JSON per message)

def _send(conn: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = socket.send_fds(conn, [data[:_HEADER.size]], fds)
        conn.sendall(data[sent:])
    else:
        conn.sendall(data)


def _receive(conn: socket.socket, with_fds: bool = False):
    """One message (and, with_fds, the descriptors sent with it); None at end of stream."""
    fds: list[int] = []
    if with_fds:
        head, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 8)
    else:
        head = conn.recv(_HEADER.size)
    head += _read_exactly(conn, _HEADER.size - len(head)) if head else b""
    if len(head) < _HEADER.size:
        return (None, fds) if with_fds else None
    body = _read_exactly(conn, _HEADER.unpack(head)[0])
    message = json.loads(body)
    return (message, fds) if with_fds else message


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- the server

def start(workdir: str, log_path: str) -> subprocess.Popen | None:
    """Start a warm server for this ``snakemake`` process (called from its onstart hook) and
    point the jobs it spawns at it; None if it could not start (jobs then run cold)."""
    folder = tempfile.mkdtemp(prefix="bert-ablation-warm-")  # short path: a socket's is <= 107 bytes
    path = os.path.join(folder, "socket")
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "w") as handle:
        # its own session: a Ctrl-C in the terminal reaches the jobs (each relays it to its fork, which
        # stops as a cold job would), not the server, which would take every fork down at once
        server = subprocess.Popen([sys.executable, "-m", "bert_ablation.warm", path, str(os.getpid())],
                                  cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    server.socket_folder = folder
    os.environ[SOCKET_ENV] = path  # jobs (the scheduler's subprocesses) inherit it
    return server


def stop(server: subprocess.Popen | None) -> None:
    """Stop the server (jobs still running in its forks are not touched: none are, at the end)."""
    os.environ.pop(SOCKET_ENV, None)
    if server is None:
        return
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # a server stopped while still importing leaves its folder: remove it here
    shutil.rmtree(getattr(server, "socket_folder", ""), ignore_errors=True)


def serve(path: str, parent: int | None = None) -> None:
    """Import what jobs need, then fork one process per connecting job until the parent
    (the ``snakemake`` that started us) is gone or we are terminated."""
    started = time.perf_counter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the jobs' to handle (start: its own session)
    # numpy's BLAS sizes its thread pool at import: one thread, so that no fork oversubscribes the
    # cores with it (torch sets each job's own count when the job starts training)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # as workflow.job_logging would
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import importlib
    for module in PRELOAD:
        importlib.import_module(module)
    import threading
    if threading.active_count() != 1:  # a fork copies only the forking thread: refuse rather than risk a lock
        log.error("warm start off: %d Python threads after the imports (a fork needs 1)", threading.active_count())
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.replace(path + ".tmp", path)  # jobs see the socket only once it accepts
    # (native threads of numpy's BLAS and pyarrow's allocator are there too: they reset at a fork
    # through their own atfork handlers, as they do for PyTorch's forked DataLoader workers)
    log.info("warm: %s imported in %.1f s (%d native threads); listening on %s", ", ".join(PRELOAD),
             time.perf_counter() - started, _native_threads(), path)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    jobs: dict[int, socket.socket] = {}  # fork's pid -> its job's connection
    try:
        while not stopping and (parent is None or os.getppid() == parent):
            for key, _ in selector.select(timeout=0.2):
                if key.fileobj is listener:
                    pid, conn = _accept(listener, selector)
                    if pid:
                        jobs[pid] = conn
                        selector.register(conn, selectors.EVENT_READ, pid)
                else:  # a job process ended (or was killed) before its fork: stop the fork
                    selector.unregister(key.fileobj)
                    _signal(key.data, signal.SIGTERM)
            _reap(jobs, selector)
    finally:
        for pid in jobs:
            _signal(pid, signal.SIGTERM)
        listener.close()
        for name in (path, os.path.dirname(path)):
            try:
                os.unlink(name) if name == path else os.rmdir(name)
            except OSError:
                pass


def _accept(listener: socket.socket, selector) -> tuple[int | None, socket.socket | None]:
    """Fork the job of one connection; (None, None) if anything fails before the fork is told to
    its job (the job process then runs cold, or has gone): one bad connection (a job killed
    mid-handshake, a fork refused by a process limit) must not stop the server and its other jobs."""
    conn, fds = None, []
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)  # a job sends its request at once; never wait on one for long
        request, fds = _receive(conn, with_fds=True)
        if request is None or len(fds) != 3:
            raise ValueError("incomplete request")
        pid = _fork_job(conn, request, fds, listener, selector)
        fds = []
        conn.settimeout(None)
        return pid, conn
    except Exception as failed:
        log.warning("warm: a job's request failed (%s: %s); it runs in its own process", type(failed).__name__,
                    failed)
        for fd in fds:
            os.close(fd)
        if conn is not None:
            conn.close()
        return None, None


def _fork_job(conn: socket.socket, request: dict, fds: list[int], listener: socket.socket, selector) -> int:
    server = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # nothing of ours may reach the job's streams
        stream.flush()
    pid = os.fork()
    if pid == 0:  # the job: never returns
        selector.close()
        listener.close()
        conn.close()
        _run_job(request, fds, server)
    for fd in fds:
        os.close(fd)
    log.info("job %s: %s", pid, request["argv"][0])
    try:
        _send(conn, {"pid": pid})
    except OSError:  # its job process is gone: so is the job
        _signal(pid, signal.SIGTERM)
        raise
    return pid


def _run_job(request: dict, fds: list[int], server: int) -> None:
    code = 1
    try:
        _die_with_server()
        if os.getppid() != server:  # the server died before the line above took effect
            os._exit(1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD_ENV] = "1"
        sys.argv = list(request["argv"])
        _as_a_fresh_interpreter(request["script"])
        import runpy
        runpy.run_path(request["script"], run_name="__main__")
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
    except BaseException:  # what python <script> would print
        import traceback
        traceback.print_exc()
    finally:
        try:
            import atexit
            atexit._run_exitfuncs()  # what a cold process runs on its way out (logging's flush among them)
        except BaseException:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _as_a_fresh_interpreter(script: str) -> None:
    """What `python <script>` would have read at start-up and the server fixed at its own: the
    script's folder first on sys.path, the job's TMPDIR, no logging set up. (numpy's BLAS pool keeps
    the server's one thread; torch, which does the jobs' arithmetic, takes each job's count from
    its threads: training/engine.py.)"""
    import logging as logging_
    import tempfile as tempfile_
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    tempfile_.tempdir = None  # read TMPDIR again
    root = logging_.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging_.WARNING)


def _reap(jobs: dict[int, socket.socket], selector) -> None:
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = jobs.pop(pid, None)
        if conn is None:
            continue
        try:
            selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        try:
            code = os.waitstatus_to_exitcode(status)
            _send(conn, {"exit": code if code >= 0 else 128 - code})  # killed by a signal: the shell's 128 + N
        except OSError:
            pass  # the job process is gone: nobody to tell
        conn.close()


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _die_with_server() -> None:
    """Linux: the fork is killed if the server dies, so no job outlives the run it belongs to."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _native_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux
        return -1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
