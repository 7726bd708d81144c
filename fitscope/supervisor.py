"""A small local supervisor: N worker processes on one study, and nothing lost when one dies.

The workers are ordinary Optuna workers sharing the study's storage; the supervisor adds only
what Optuna leaves to the caller on one machine:

- the trial budget (search/budget.py): the workers add exactly `--trials` trials together;
- a dead worker (crash, SIGKILL, out-of-memory kill) is seen at once, without waiting for a
  heartbeat's grace period: its running trial is marked FAIL with the reason, the tracking hook
  writes its run (FAILED), the same params are queued again once (`enqueue_trial`, user attr
  `retry_of`) and a replacement worker starts; the retry counts once towards `--trials`;
- Ctrl-C / SIGTERM: every worker is asked to stop (SIGINT: its trial ends FAIL "interrupted"
  and its runs are closed), and after `stop_grace` seconds the stragglers are killed and cleaned
  up the same way.

Workers run in their own process session, so a Ctrl-C typed in the terminal reaches only the
supervisor, which forwards exactly one to each worker.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType

import optuna
from optuna.trial import FrozenTrial, TrialState

from common.children import die_with_parent
from fitscope.workers import WorkerSlot
from search import record as trial_record
from search.budget import ASK, GO, STOP, TrialBudget

# argv of one worker, given its slot and the "--supervisor-fds" value that connects it
WorkerArgv = Callable[[WorkerSlot, str], list[str]]
TrialHook = Callable[[optuna.Study, FrozenTrial], None]


@dataclass
class _Worker:
    slot: WorkerSlot
    proc: subprocess.Popen[bytes]
    requests: int | None  # read end: the worker asks here
    replies: int  # write end: the supervisor answers here
    started: datetime
    grants: int = 0

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"  # = search.study.worker_id() there


class Supervisor:
    """Start, watch and replace the workers of one study.

    Example:
        >>> supervisor = Supervisor(study, storage, TrialBudget(6), plan_workers(2), argv, env={},
        ...                         on_trial_failed=tracker_hook)  # doctest: +SKIP
        >>> supervisor.run()  # doctest: +SKIP
        'finished'
    """

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        budget: TrialBudget,
        slots: list[WorkerSlot],
        argv: WorkerArgv,
        env: dict[str, str],
        on_trial_failed: TrialHook | None = None,
        say: Callable[[str], None] = print,
        timeout: float | None = None,
        stop_grace: float = 60.0,
    ) -> None:
        self.study = study
        self.storage = storage  # the study's: a dead worker's trial is failed through it
        self.budget = budget
        self.slots = slots
        self.argv = argv
        self.env = env
        self.on_trial_failed = on_trial_failed
        self.say = say
        self.deadline = time.monotonic() + timeout if timeout else None
        self.stop_grace = stop_grace
        self.workers: list[_Worker] = []
        self.signals = 0
        self.stop_deadline: float | None = None
        self.replacements = 0
        self.failed_trials: list[int] = []  # trials this supervisor marked FAIL
        self.retries: list[int] = []  # numbers of the trials it queued again

    # --- main loop ---------------------------------------------------------------------
    def run(self) -> str:
        """Run until the budget is spent and every worker has exited.

        Returns "finished", "interrupted" (Ctrl-C / SIGTERM) or "failed" (trials were left
        undone: the workers could not start, or kept dying).
        """
        restore = self._install_signal_handlers()
        try:
            for slot in self.slots:
                self._spawn(slot)
            while self.workers:
                if self.signals and self.stop_deadline is None:
                    self._stop_all()
                self._serve_requests(timeout=0.2)
                for worker in list(self.workers):
                    code = worker.proc.poll()
                    if code is not None:
                        self._reap(worker, code)
                if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                    self._kill_all()
        finally:
            restore()
            if self.workers:  # an exception above: never leave orphans
                self._kill_all()
                for worker in list(self.workers):
                    worker.proc.wait()
                    self._reap(worker, worker.proc.returncode)
        if self.signals:
            return "interrupted"
        if self.budget.left > 0 and not self._timed_out():
            return "failed"  # workers crashed at start-up, or more often than replaced
        return "finished"

    # --- workers -----------------------------------------------------------------------
    def _spawn(self, slot: WorkerSlot) -> None:
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        fds = f"{replies_r},{requests_w}"
        env = {**os.environ, **self.env, **slot.environment()}
        if self.deadline is not None:
            env["FITSCOPE_WORKER_TIMEOUT"] = f"{max(1.0, self.deadline - time.monotonic()):.0f}"
        proc = subprocess.Popen(
            self.argv(slot, fds), env=env, pass_fds=(replies_r, requests_w),
            start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only
            # a supervisor killed with -9 cannot stop them: the kernel sends them SIGTERM, which
            # stops a worker as Ctrl-C does (its trial FAIL "interrupted", its runs closed)
            preexec_fn=die_with_parent(),
        )
        os.close(replies_r)
        os.close(requests_w)
        where = f"GPU {slot.gpu}" if slot.gpu is not None else f"{slot.threads} CPU thread(s)"
        self.say(f"worker {slot.index + 1}/{slot.count} started: pid {proc.pid}, {where}")
        # a second before the start: Optuna's trial timestamps and ours come from the same clock,
        # but pids are reused, so only trials started after the worker was count as its own
        started = datetime.now() - timedelta(seconds=1)
        self.workers.append(_Worker(slot, proc, requests_r, replies_w, started))

    def _serve_requests(self, timeout: float) -> None:
        by_fd = {w.requests: w for w in self.workers if w.requests is not None}
        if not by_fd:
            time.sleep(timeout)
            return
        try:
            ready, _, _ = select.select(list(by_fd), [], [], timeout)
        except InterruptedError:  # a signal arrived; the loop looks at it
            return
        for fd in ready:
            worker = by_fd[fd]
            data = os.read(fd, 64)
            if not data:  # the worker closed its end: it is exiting
                os.close(fd)
                worker.requests = None
                continue
            for _ in range(data.count(ASK)):
                go = not self.signals and not self._timed_out() and self.budget.grant()
                worker.grants += int(go)
                with contextlib.suppress(OSError):  # it died meanwhile: _reap gives it back
                    os.write(worker.replies, GO if go else STOP)

    def _reap(self, worker: _Worker, code: int) -> None:
        self.workers.remove(worker)
        for fd in (worker.requests, worker.replies):
            if fd is not None:
                os.close(fd)
        stopping = self.signals > 0
        expected = code == 0 or stopping
        reason = "interrupted (Ctrl-C)" if stopping else f"worker died ({describe_exit(code)})"
        counted, retried = self._clean_up_trials(worker, reason, retry=not expected)
        # grants that produced no counted trial go back: the retry takes a new one
        self.budget.give_back(worker.grants - counted)
        if expected:
            return
        if worker.grants == 0:
            self.say(f"worker pid {worker.proc.pid} exited at start-up ({describe_exit(code)}); "
                     "not replaced")
            return
        self.say(f"worker pid {worker.proc.pid} died ({describe_exit(code)})"
                 + (f"; trial {', '.join(map(str, retried))} queued again" if retried else ""))
        # a cap on replacements, so a worker that always crashes cannot loop forever
        can_replace = self.replacements < 4 * len(self.slots)
        if self.budget.left > 0 and not self._timed_out() and can_replace:
            self.replacements += 1
            self._spawn(worker.slot)

    def _clean_up_trials(
        self, worker: _Worker, reason: str, retry: bool
    ) -> tuple[int, list[int]]:
        """FAIL the dead worker's running trials; return (trials that count, retried numbers)."""
        counted, retried = 0, []
        for trial in self.study.get_trials(deepcopy=False):
            if trial.user_attrs.get(trial_record.WORKER) != worker.name:
                continue
            if trial.datetime_start is None or trial.datetime_start < worker.started:
                continue
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
                counted += 1
            if trial.state != TrialState.RUNNING:
                continue
            failed = fail_trial(self.storage, self.study.study_name, trial, reason)
            if failed is None:  # the heartbeat check of another worker was first
                counted += 1
                continue
            self.failed_trials.append(trial.number)
            if self.on_trial_failed is not None:
                self.on_trial_failed(self.study, failed)
            if retry and trial_record.RETRY_OF not in trial.user_attrs:
                self.study.enqueue_trial(trial.params,
                                         user_attrs={trial_record.RETRY_OF: trial.number})
                retried.append(trial.number)
                self.retries.append(trial.number)
            else:
                counted += 1  # a retry that died too, or an interrupted trial: it counts
        return counted, retried

    # --- stopping ----------------------------------------------------------------------
    def _stop_all(self) -> None:
        self.say(f"stopping {len(self.workers)} worker(s): their running trials end FAIL "
                 "(interrupted); run the same command again to resume")
        self.stop_deadline = time.monotonic() + self.stop_grace
        for worker in self.workers:
            _signal(worker.proc, signal.SIGINT)

    def _kill_all(self) -> None:
        for worker in self.workers:
            _signal(worker.proc, signal.SIGKILL)
        self.stop_deadline = time.monotonic() + 3600  # killed: wait for them to be reaped

    def _timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.signals += 1
            if self.signals == 2:  # a second Ctrl-C: do not wait for the workers any longer
                os.write(2, b"\nfitscope: killing the workers\n")
                self.stop_deadline = 0.0

        for sig in previous:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def fail_trial(
    storage: optuna.storages.BaseStorage, study_name: str, trial: FrozenTrial, reason: str
) -> FrozenTrial | None:
    """Mark another process's RUNNING trial FAIL with `fail_reason`, as Optuna's own
    stale-trial check does (through the storage: `Study.tell` is for the trial's owner).

    Returns the failed trial, or None when it had already finished.
    """
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    try:
        storage.set_trial_user_attr(trial_id, trial_record.FAIL_REASON, reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    return storage.get_trial(trial_id)


def describe_exit(code: int) -> str:
    """`-9` -> "signal 9, SIGKILL"; `1` -> "exit code 1" (Popen's returncode convention).

    Example:
        >>> describe_exit(-9)
        'signal 9, SIGKILL'
    """
    if code < 0:
        try:
            return f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    note = " (out of memory?)" if code == 137 else ""
    return f"exit code {code}{note}"


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
