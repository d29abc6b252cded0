#!/usr/bin/python3
# Runs the installed Patroni with `postgresql.before_stop` for pgrelay's tests: Debian's Patroni
# 3.0.2 has no before_stop (it arrived in 3.0.3) and silently ignores the key. Usage is Patroni's:
# `python3 patroni-launcher.py CONFIG.yml`.
#
# Why this is faithful to Patroni >= 3.0.3 (whose Postgresql._do_stop reads: CHECKPOINT ->
# set_state('stopping') -> self._before_stop() -> before_shutdown() -> signal the postmaster):
# - Same point in the stop path. We do not run the script before the original _do_stop (that would
#   be before the CHECKPOINT); we hand the original a `before_shutdown` that runs the script first.
#   _do_stop calls before_shutdown exactly where newer Patroni calls _before_stop: after the
#   CHECKPOINT, only when the postmaster is running, right before the stop signal. So the order is
#   CHECKPOINT -> before_stop -> (Patroni's own before_shutdown) -> shutdown, as upstream.
# - Every stop goes through Postgresql.stop() -> _do_stop(), on any node: switchover, restart of
#   a primary or a replica, the stop before pg_rewind, a stale primary being demoted, Patroni's
#   own shutdown on SIGTERM. No stop happens without passing here, as upstream.
# - Synchronous: Patroni's stop waits for the script, as upstream (which uses no time limit; we cap
#   it at BEFORE_STOP_TIMEOUT_S so a hung hook cannot wedge a test forever, and say so in the log).
# - argv is exactly shlex.split(configured command), no extra arguments, no extra environment;
#   stdout/stderr are inherited (the node's log); the exit code is only logged, as upstream.
# Where the installed Patroni already has before_stop, we patch nothing (no double run).

import inspect
import logging
import os
import shlex
import signal
import subprocess
import sys

BEFORE_STOP_TIMEOUT_S = 30

# The positional signature we wrap; a different one means another Patroni: refuse to guess.
EXPECTED_DO_STOP_PARAMS = ['self', 'mode', 'block_callbacks', 'checkpoint', 'on_safepoint', 'on_shutdown',
                           'before_shutdown', 'stop_timeout']

logger = logging.getLogger('patroni.postgresql')


def run_before_stop(postgresql):
    cmd = postgresql.config.get('before_stop')
    if not cmd:
        return
    try:
        argv = shlex.split(cmd)
        logger.info('before_stop (pgrelay launcher): running `%s`', cmd)
        # Own session so that a timeout can kill the whole process group (a shell and its children).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        try:
            ret = proc.wait(timeout=BEFORE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning('before_stop script `%s` still running after %s s: killing it', cmd, BEFORE_STOP_TIMEOUT_S)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            ret = proc.wait()
        logger.info('before_stop script `%s` exited with %s', cmd, ret)
    except Exception as e:
        logger.error('Exception when calling `%s`: %r', cmd, e)


def install_before_stop():
    from patroni.postgresql import Postgresql

    if hasattr(Postgresql, '_before_stop'):
        logger.info('this Patroni implements before_stop itself; the pgrelay launcher patches nothing')
        return
    original = Postgresql._do_stop
    params = list(inspect.signature(original).parameters)
    if params != EXPECTED_DO_STOP_PARAMS:
        sys.exit('patroni-launcher: Postgresql._do_stop{0} is not the 3.0.x signature {1}; update the launcher'
                 .format(params, EXPECTED_DO_STOP_PARAMS))

    def _do_stop(self, mode, block_callbacks, checkpoint, on_safepoint, on_shutdown, before_shutdown, stop_timeout):
        def before_stop_then_shutdown_hook():
            run_before_stop(self)
            if before_shutdown:
                before_shutdown()
        return original(self, mode, block_callbacks, checkpoint, on_safepoint, on_shutdown,
                        before_stop_then_shutdown_hook, stop_timeout)

    Postgresql._do_stop = _do_stop


# Patroni starts the postmaster through multiprocessing's *spawn* context, which re-imports this
# file as __mp_main__ in a fresh interpreter: without this guard that child would run a second
# Patroni and bootstrap would hang.
if __name__ == '__main__':
    install_before_stop()
    from patroni.__main__ import main
    sys.exit(main())
