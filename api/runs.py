"""Scenario runs launched through the API: queued, executed in worker processes, persisted.

A run is a record (:class:`RunRecord`) in ``runs_dir/<id>/run.json``, rewritten atomically
(temporary file, then rename) at every change of status and, while it runs, as its progress
moves (at most every ``_PROGRESS_EVERY_S`` seconds). A run that succeeds also leaves its
:meth:`simulate.cascade.run.RunResult.save` files beside it (``result.json`` with the spec,
inputs and metrics, ``result.npz`` with the per-path arrays).

Execution never happens on the request path. Runs wait in a FIFO queue and at most
``max_concurrent`` execute at once, each in a worker process (``multiprocessing``'s spawn
context: nothing of the server's threads or sockets is inherited). The first run starts the
first worker; a worker executes runs one after the other and stays ready between them (up to
``max_concurrent`` idle workers), so the import of the simulator is paid once; a worker whose
run is cancelled exits, and a fresh one starts warming at once. The worker reads the snapshot
itself: it opens the
served store by its URI (a Neo4j server, or the memory store's file); only a memory store
without a file has its snapshot read by the server and handed over. A Monte Carlo run fits
the market model in the worker from the server's price histories (``ApiSettings.prices``,
the last ``history_days`` days): every run goes through :func:`simulate.pipeline.execute_run`,
as ``contagion simulate`` and ``contagion demo`` do.

Progress flows back from :func:`~simulate.cascade.run.run_cascade`'s ``progress`` callback
over a pipe into the record and to every watcher (:meth:`RunManager.watch`). Cancelling is
cooperative first: a flag the worker checks at each progress report; a worker that has not
stopped ``cancel_grace_s`` seconds later is terminated (then killed). Either way the worker
process is gone and the run is ``cancelled``.

When the server starts, the records on disk are listed again; runs that a previous server
left ``queued`` or ``running`` are marked ``failed`` with a message saying so (they are not
re-queued: a run is reproduced bit for bit by launching its spec and seed again).

A server of several processes (``contagion serve --workers N``) cannot give every process the
same queue: there each process has a read-only manager (``unavailable`` says why), which lists
the runs on disk as they were when it started and launches, cancels and watches none.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import multiprocessing
import os
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graph.errors import ContagionError
from graph.snapshot import Snapshot
from simulate.cascade.run import RunResult, compare_runs
from simulate.pipeline import PriceHistory, RunRequest
from simulate.scenarios import MonteCarloScenario, Scenario

__all__ = ["FINISHED", "RunManager", "RunNotFound", "RunRecord", "RunStatus", "RunsUnavailable"]

log = logging.getLogger("contagion.api.runs")

_PROGRESS_EVERY_S = 0.1
_RECORD = "run.json"
_RESULT = "result.json"


class RunStatus(enum.StrEnum):
    """Where a run is: waiting, executing, or one of three ends."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class RunNotFound(ContagionError, KeyError):
    """No run has this id."""

    def __str__(self) -> str:
        return str(self.args[0])


class RunsUnavailable(ContagionError, RuntimeError):
    """This server launches, cancels and watches no runs (see the module doc)."""


class RunRecord(BaseModel):
    """One run as persisted in ``run.json``.

    ``paths``, ``seed`` and ``rounds`` are what the run executes with (the scenario's own
    paths and seed unless the request gave others; one path, seed 0, for fixed shocks and
    replays); ``launched_by`` is the id of the API key that launched it; ``result`` the file
    name of the saved :class:`~simulate.cascade.run.RunResult` (once succeeded).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    status: RunStatus
    progress: float = Field(ge=0.0, le=1.0)
    message: str
    error: str | None = None
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
    scenario: Scenario
    paths: int
    seed: int
    rounds: int
    launched_by: str
    result: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class _Job:
    """What a worker needs to execute one run: the request, the snapshot when the served
    store is a memory store without a file (no other process can open it), where to save."""

    request: RunRequest
    snapshot: Snapshot | None
    result_path: str


class _Cancelled(Exception):
    pass


def _worker_main(conn: Connection, cancel: MpEvent) -> None:
    """A worker process: import the simulator, then execute jobs one at a time until told to
    stop (``None``) or a job is cancelled.

    Messages to the server per job: ``("progress", done, total, message)``, then one of
    ``("succeeded", seconds)``, ``("cancelled",)`` or ``("failed", message, traceback)``
    (``traceback`` is empty for an expected failure, whose message the client may see).
    """
    # imported now, while no run waits
    import simulate.pipeline  # noqa: F401

    while True:
        try:
            job: _Job | None = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            _execute(job, conn, cancel)
        except _Cancelled:
            conn.send(("cancelled",))
            return  # a cancelled worker is not reused: it exits
        except (ContagionError, ValueError, OSError) as e:
            conn.send(("failed", str(e).splitlines()[0] if str(e) else type(e).__name__, ""))
        except Exception as e:
            conn.send(("failed", f"{type(e).__name__}: {e}", traceback.format_exc()))


def _execute(job: _Job, conn: Connection, cancel: MpEvent) -> None:
    from simulate.pipeline import execute_run

    last = 0.0

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal last
        if cancel.is_set():
            raise _Cancelled
        now = time.monotonic()
        if stage != "simulating" or done == 0 or now - last >= _PROGRESS_EVERY_S \
                or done >= total:
            last = now
            conn.send(("progress", done, total, stage))

    result = execute_run(job.request, snapshot=job.snapshot, out=job.result_path,
                         progress=progress)
    conn.send(("succeeded", result.seconds))


@dataclass
class _Worker:
    """A started worker process, its end of the pipe and its cancel flag."""

    process: BaseProcess
    conn: Connection
    cancel: MpEvent


@dataclass
class _Running:
    worker: _Worker
    done: threading.Event = field(default_factory=threading.Event)
    cancel_requested: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(now: datetime) -> str:
    """Ids sort by creation time (then at random within a microsecond)."""
    return f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


class RunManager:
    """The runs of one server: launch, list, watch, cancel, compare.

    ``store_uri`` is the served store's; ``snapshot`` reads its snapshot in the server
    (used only for a memory store without a file, which no other process can open).
    ``prices`` are the price histories the market model of Monte Carlo runs is fitted on.
    """

    def __init__(self, runs_dir: Path, store_uri: str, *,
                 snapshot: Any = None, prices: tuple[PriceHistory, ...] = (),
                 history_days: int = 1460, max_concurrent: int = 1,
                 cancel_grace_s: float = 5.0, unavailable: str | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self.store_uri = store_uri
        self._read_snapshot = snapshot
        self.prices = prices
        self.history_days = history_days
        self.max_concurrent = max_concurrent
        self.cancel_grace_s = cancel_grace_s
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()
        self._records: dict[str, RunRecord] = {}
        self._queue: deque[str] = deque()
        self._running: dict[str, _Running] = {}
        self._idle: list[_Worker] = []
        self._watchers: dict[str, list[tuple[asyncio.AbstractEventLoop,
                                             asyncio.Queue[RunRecord]]]] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._closed = False
        #: why this manager is read-only (None: it launches runs)
        self.unavailable = unavailable

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Read the runs on disk (failing those a stopped server left unfinished)."""
        if self.runs_dir.is_dir():
            for d in sorted(self.runs_dir.iterdir()):
                f = d / _RECORD
                if not f.is_file():
                    continue
                try:
                    rec = RunRecord.model_validate_json(f.read_text("utf-8"))
                except (OSError, ValueError) as e:
                    log.warning("skipping unreadable run record %s: %s", f, e)
                    continue
                if rec.status not in FINISHED and self.unavailable is None:
                    rec = rec.model_copy(update={
                        "status": RunStatus.FAILED, "finished": _now(),
                        "message": "the server stopped before this run finished",
                        "error": f"the server stopped while this run was {rec.status}; "
                                 "launch it again (same spec and seed: same numbers)"})
                    self._write(rec)
                self._records[rec.id] = rec

    def close(self) -> None:
        """Stop every worker; runs still queued or running are marked failed."""
        with self._lock:
            self._closed = True
            running = list(self._running.items())
            queued = list(self._queue)
            self._queue.clear()
            idle, self._idle = self._idle, []
        for rid in queued:
            self._finish(rid, RunStatus.FAILED, "the server stopped before this run started",
                         error="the server stopped before this run started")
        for _, run in running:
            self._stop(run.worker, grace=0.0)
        for rid, run in running:
            run.done.wait(5)
            if not run.done.is_set():
                self._finish(rid, RunStatus.FAILED, "the server stopped during this run",
                             error="the server stopped during this run; launch it again "
                                   "(same spec and seed: same numbers)")
        for worker in idle:
            self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        worker.process.join(2)
        self._stop(worker, grace=0.0)
        worker.conn.close()

    def _spawn(self) -> _Worker:
        ours, theirs = self._ctx.Pipe()
        cancel = self._ctx.Event()
        p = self._ctx.Process(target=_worker_main, args=(theirs, cancel), daemon=True,
                              name="contagion-run")
        p.start()
        theirs.close()
        return _Worker(p, ours, cancel)

    def _ensure_spare(self) -> None:
        """Keep one worker ready (called with the lock held)."""
        self._idle = [w for w in self._idle if w.process.is_alive()]
        if not self._closed and not self._idle:
            self._idle.append(self._spawn())

    @staticmethod
    def _stop(worker: _Worker, grace: float) -> None:
        worker.process.join(grace)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(2)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(2)

    # -- records -----------------------------------------------------------------------------

    def _write(self, rec: RunRecord) -> None:
        d = self.runs_dir / rec.id
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{_RECORD}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(rec.model_dump_json(indent=1), "utf-8")
        tmp.replace(d / _RECORD)

    def _update(self, rid: str, *, persist: bool = True, **changes: Any) -> RunRecord:
        with self._lock:
            rec = self._records[rid].model_copy(update=changes)
            self._records[rid] = rec
            if persist:
                self._write(rec)
            watchers = list(self._watchers.get(rid, ()))
        for loop, q in watchers:
            with contextlib.suppress(RuntimeError):  # the watcher's loop has closed
                loop.call_soon_threadsafe(q.put_nowait, rec)
        return rec

    def _finish(self, rid: str, status: RunStatus, message: str, *, error: str | None = None,
                **changes: Any) -> RunRecord:
        return self._update(rid, status=status, message=message, error=error,
                            finished=_now(), **changes)

    # -- launching and executing -------------------------------------------------------------

    def submit(self, scenario: Any, *, paths: int, seed: int, rounds: int,
               launched_by: str) -> RunRecord:
        """Queue a run of a validated scenario; returns its record (``queued``)."""
        if self.unavailable is not None:
            raise RunsUnavailable(self.unavailable)
        now = _now()
        rec = RunRecord(id=_new_id(now), status=RunStatus.QUEUED, progress=0.0,
                        message="queued", created=now, scenario=scenario, paths=paths,
                        seed=seed, rounds=rounds, launched_by=launched_by)
        with self._lock:
            if self._closed:
                raise RuntimeError("the run manager is closed")
            self._records[rec.id] = rec
            self._write(rec)
            self._queue.append(rec.id)
            self._dispatch()
        return rec

    def _dispatch(self) -> None:
        """Start queued runs while there is room (called with the lock held)."""
        while self._queue and len(self._running) < self.max_concurrent and not self._closed:
            rid = self._queue.popleft()
            self._ensure_spare()
            run = _Running(self._idle.pop())
            self._running[rid] = run
            self._update(rid, status=RunStatus.RUNNING, started=_now(), message="starting")
            threading.Thread(target=self._supervise, args=(rid, run), daemon=True,
                             name=f"contagion-run-{rid}").start()

    def _supervise(self, rid: str, run: _Running) -> None:
        """Hand the job to the worker, then follow its messages to the end (a thread)."""
        rec = self._records[rid]
        outcome: tuple[Any, ...] | None = None
        try:
            snapshot = None
            if self.store_uri == "memory:" and self._read_snapshot is not None:
                snapshot = self._read_snapshot()
            result = self.runs_dir / rid / _RESULT
            mc = isinstance(rec.scenario, MonteCarloScenario)
            request = RunRequest(
                scenario=rec.scenario, store=None if snapshot is not None else self.store_uri,
                paths=rec.paths if mc else None, seed=rec.seed if mc else None,
                rounds=rec.rounds, prices=self.prices if mc else (),
                history_days=self.history_days)
            run.worker.conn.send(_Job(request=request, snapshot=snapshot,
                                      result_path=str(result)))
            last_write = 0.0
            while True:
                msg = run.worker.conn.recv()
                if msg[0] != "progress":
                    outcome = msg
                    break
                _, done, total, message = msg
                now = time.monotonic()
                persist = now - last_write >= 1.0 or done >= total
                if persist:
                    last_write = now
                self._update(rid, persist=persist, message=message,
                             progress=min(1.0, done / total) if total else 0.0)
        except (EOFError, OSError):
            pass  # the worker is gone: terminated, or it died
        except Exception:
            log.exception("run %s: supervising the worker failed", rid)
        finally:
            reuse = (outcome is not None and outcome[0] in ("succeeded", "failed")
                     and not run.cancel_requested and run.worker.process.is_alive())
            with self._lock:
                if reuse and not self._closed and len(self._idle) < self.max_concurrent:
                    self._idle.append(run.worker)
                else:
                    reuse = False
            if not reuse:
                self._retire(run.worker)
            self._conclude(rid, run, outcome)

    def _conclude(self, rid: str, run: _Running, outcome: tuple[Any, ...] | None) -> None:
        try:
            code = run.worker.process.exitcode
            if outcome is not None and outcome[0] == "succeeded":
                self._finish(rid, RunStatus.SUCCEEDED, "succeeded", progress=1.0,
                             result=_RESULT, seconds=float(outcome[1]))
            elif (outcome is not None and outcome[0] == "cancelled") or (
                    run.cancel_requested and outcome is None):
                self._finish(rid, RunStatus.CANCELLED, "cancelled",
                             error="cancelled by request")
            elif outcome is not None and outcome[0] == "failed":
                _, message, trace = outcome
                if trace:
                    log.error("run %s failed in its worker:\n%s", rid, trace)
                    message = (f"internal error in the run's worker (run {rid}); the server "
                               "log has the details")
                self._finish(rid, RunStatus.FAILED, "failed", error=message)
            elif self._closed:
                self._finish(rid, RunStatus.FAILED, "the server stopped during this run",
                             error="the server stopped during this run; launch it again "
                                   "(same spec and seed: same numbers)")
            else:
                self._finish(rid, RunStatus.FAILED, "failed",
                             error=f"the run's worker process exited unexpectedly (exit code "
                                   f"{code})")
        finally:
            with self._lock:
                self._running.pop(rid, None)
                run.done.set()
                self._dispatch()
                if run.cancel_requested:  # its worker exited: warm up the next one now
                    self._ensure_spare()

    # -- reading -----------------------------------------------------------------------------

    def get(self, rid: str) -> RunRecord | None:
        """The record of run ``rid``, or None."""
        return self._records.get(rid)

    def require(self, rid: str) -> RunRecord:
        rec = self._records.get(rid)
        if rec is None:
            raise RunNotFound(f"no run has id {rid!r}")
        return rec

    def list(self, status: RunStatus | None = None) -> list[RunRecord]:
        """Every run (of ``status``), newest first."""
        with self._lock:
            recs = list(self._records.values())
        return sorted((r for r in recs if status is None or r.status == status),
                      key=lambda r: r.id, reverse=True)

    def worker_pid(self, rid: str) -> int | None:
        """The process id of the worker executing run ``rid`` (None unless it is running)."""
        with self._lock:
            run = self._running.get(rid)
        return None if run is None else run.worker.process.pid

    def result_doc(self, rid: str) -> dict[str, Any]:
        """The saved result of a succeeded run (spec, inputs, metrics), read once."""
        cached = self._results.get(rid)
        if cached is None:
            rec = self.require(rid)
            if rec.status != RunStatus.SUCCEEDED or rec.result is None:
                raise ValueError(f"run {rid} has no results (it is {rec.status})")
            cached = json.loads((self.runs_dir / rid / rec.result).read_text("utf-8"))
            self._results[rid] = cached
        return cached

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """:func:`~simulate.cascade.run.compare_runs` of two succeeded runs (``b`` - ``a``)."""
        results = []
        for rid in (a, b):
            rec = self.require(rid)
            if rec.status != RunStatus.SUCCEEDED or rec.result is None:
                raise ValueError(f"run {rid} has not succeeded (it is {rec.status}); only "
                                 "succeeded runs can be compared")
            results.append(RunResult.load(self.runs_dir / rid / rec.result))
        return compare_runs(results[0], results[1])

    # -- cancelling and watching ---------------------------------------------------------------

    async def cancel(self, rid: str) -> tuple[RunRecord, bool]:
        """Cancel a queued or running run; returns its record and whether it was cancelled
        (False: it had already finished). A running worker gets ``cancel_grace_s`` seconds
        to stop at its next progress report, then is terminated."""
        if self.unavailable is not None:
            raise RunsUnavailable(self.unavailable)
        with self._lock:
            rec = self.require(rid)
            if rec.status in FINISHED:
                return rec, False
            if rid in self._queue:
                self._queue.remove(rid)
                return self._finish(rid, RunStatus.CANCELLED, "cancelled",
                                    error="cancelled by request before it started"), True
            run = self._running[rid]
            run.cancel_requested = True
            run.worker.cancel.set()
        if not await asyncio.to_thread(run.done.wait, self.cancel_grace_s):
            await asyncio.to_thread(self._stop, run.worker, 0.0)
            await asyncio.to_thread(run.done.wait, 10.0)
        rec = self.require(rid)  # it may have finished another way meanwhile
        return rec, rec.status == RunStatus.CANCELLED

    async def watch(self, rid: str) -> AsyncIterator[RunRecord]:
        """The record of run ``rid`` now and at each change, until it has finished."""
        if self.unavailable is not None:
            raise RunsUnavailable(self.unavailable)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[RunRecord] = asyncio.Queue()
        with self._lock:
            rec = self.require(rid)
            self._watchers.setdefault(rid, []).append((loop, q))
        try:
            yield rec
            while rec.status not in FINISHED:
                rec = await q.get()
                while not q.empty():  # only the latest state matters to a slow watcher
                    rec = q.get_nowait()
                yield rec
        finally:
            with self._lock:
                mine = self._watchers.get(rid, [])
                if (loop, q) in mine:
                    mine.remove((loop, q))
                if not mine:
                    self._watchers.pop(rid, None)
