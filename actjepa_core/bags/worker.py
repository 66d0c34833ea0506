"""Conversions off the recording path: a child process converts bags into the episodes file while
the recorder keeps writing messages.

One child (spawned: a fresh interpreter, never a fork of a process running DDS threads; at a
lower CPU priority, so the recorder's callbacks win a busy CPU) runs the jobs one at a time in the
order they were submitted: ``append`` (one closed bag -> ``append.append_bag``) and ``rebuild``
(bags -> ``append.rebuild``). A job's outcome comes back as plain data through ``on_result``,
called from a thread of the parent. The child ignores SIGINT (a terminal's Ctrl-C reaches the whole
process group; the recorder decides when conversions stop) and treats SIGTERM as "stop now": the
job it is running is abandoned, its temporary files removed, the episodes file unchanged. A child
that dies (OOM) fails its job with the reason and is replaced for the next one. If the recorder
itself is killed, the child finishes its job and exits.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Callable

from actjepa_core.bags import append

POLL_S = 0.05
STOP_TIMEOUT_S = 5.0
CHILD_NICE = 10  # added to the child's niceness: conversions yield the CPU to recording
EXIT_TERMINATED = 143  # 128 + SIGTERM


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in this process (the child's loop; tests)."""
    if job["kind"] == "append":
        return append.append_bag(job["bag"], job["config"], job["episodes_file"])
    if job["kind"] == "rebuild":
        return append.rebuild(job["bags"], job["config"], job["episodes_file"])
    raise ValueError(f"unknown job kind {job['kind']!r}")


def _child_main(conn: Any, nice: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_TERMINATED))  # finally blocks run
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        try:
            result = run_job(job)
        except Exception as err:  # noqa: BLE001 - a bug must fail its job, not the child
            result = {"kind": job["kind"], "ok": False, "error": f"{type(err).__name__}: {err}",
                      "episodes_file": job.get("episodes_file", ""), "bag": job.get("bag", "")}
        try:
            conn.send(result)
        except (EOFError, OSError):
            return


class ConversionWorker:
    """Jobs in, results out (``on_result``), one child process doing the work."""

    def __init__(self, on_result: Callable[[dict[str, Any]], None],
                 nice: int = CHILD_NICE) -> None:
        self.on_result = on_result
        self.nice = nice
        self._ctx = multiprocessing.get_context("spawn")
        self._jobs: queue.Queue = queue.Queue()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._waiting: dict[int, dict[str, Any]] = {}  # id -> job submitted, not finished
        self.abandoned: list[dict[str, Any]] = []
        self._proc: Any = None
        self._conn: Any = None
        self._next_id = 0
        self._start_child()  # now: the imports are paid before the first bag closes
        self._thread = threading.Thread(target=self._serve, name="conversion", daemon=True)
        self._thread.start()

    # ---- parent side ----------------------------------------------------------------------
    def submit(self, job: dict[str, Any]) -> int:
        """Queue ``job`` (kind, its arguments); returns its id (``job`` in its result)."""
        with self._lock:
            self._next_id += 1
            job = {**job, "job": self._next_id}
            self._waiting[job["job"]] = job
        self._jobs.put(job)
        return job["job"]

    def pending(self) -> int:
        """Jobs submitted and not finished (the running one included)."""
        with self._lock:
            return len(self._waiting)

    def close(self, timeout_s: float, hurry: threading.Event | None = None
              ) -> list[dict[str, Any]]:
        """Let the queued jobs finish for up to ``timeout_s`` (less if ``hurry`` is set), then
        stop: the running job is abandoned (the episodes file unchanged), queued ones not run.
        Returns the jobs not done."""
        self._jobs.put(None)
        deadline = time.monotonic() + max(0.0, timeout_s)
        while self._thread.is_alive() and time.monotonic() < deadline \
                and not (hurry is not None and hurry.is_set()):
            self._thread.join(POLL_S)
        if self._thread.is_alive():
            self._abort.set()
            self._thread.join(STOP_TIMEOUT_S * 2)
        self._stop_child()
        return list(self.abandoned)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._abort.is_set():
                self._give_up(job, "not started: the recorder was stopping")
                continue
            result = self._run(job)
            with self._lock:
                self._waiting.pop(job["job"], None)
            if result is None:
                continue  # abandoned (recorded in self.abandoned)
            result["job"] = job["job"]
            try:
                self.on_result(result)
            except Exception:  # noqa: BLE001 - a reporting failure must not stop conversions
                pass

    def _give_up(self, job: dict[str, Any], why: str) -> None:
        with self._lock:
            self._waiting.pop(job["job"], None)
            self.abandoned.append({**job, "why": why})

    def _run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        if self._proc is None or not self._proc.is_alive():
            self._start_child()
        try:
            self._conn.send(job)
        except (OSError, EOFError, ValueError) as err:
            self._proc = None
            return self._failed(job, f"conversion process unreachable ({err})")
        while True:
            if self._abort.is_set():
                self._stop_child(terminate=True)
                self._give_up(job, "abandoned part-way: the recorder was stopping (the episodes "
                                   "file is unchanged)")
                return None
            try:
                if self._conn.poll(POLL_S):
                    return self._conn.recv()
            except (EOFError, OSError):
                pass
            else:
                if self._proc.is_alive():
                    continue
            self._proc.join(STOP_TIMEOUT_S)
            code = self._proc.exitcode
            self._proc = None
            how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exit code {code}")
            return self._failed(job, f"the conversion process died ({how}; out of memory?); "
                                     "the episodes file is unchanged")

    @staticmethod
    def _failed(job: dict[str, Any], error: str) -> dict[str, Any]:
        return {"kind": job["kind"], "bag": job.get("bag", ""), "ok": False, "error": error,
                "episodes_file": job.get("episodes_file", ""), "added": 0, "episodes": None}

    def _start_child(self) -> None:
        if self._conn is not None:
            self._conn.close()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_child_main, args=(child, self.nice),
                                 name="actjepa-conversion", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _stop_child(self, terminate: bool = False) -> None:
        proc = self._proc
        if proc is None:
            return
        if not terminate:
            try:
                self._conn.send(None)
            except (OSError, EOFError, ValueError):
                pass
            proc.join(STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.terminate()  # SIGTERM: the child removes its temporaries and exits
            proc.join(STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.kill()
            proc.join(STOP_TIMEOUT_S)
        self._conn.close()
        self._proc = self._conn = None
