"""Sequences on an existing Dask distributed cluster (``--cluster ADDRESS``).

Dask is the optional ``cluster`` extra (``pip install "siamese-mot[cluster]"``): only this module
imports it, and only when a run asks for a cluster. Each sequence is one task; a worker reads the
sequence and writes its result file and record itself, so the data and the output folder must be
on paths every worker sees (a shared file system) under the same names. Only the scheduler's
address, the paths and the config travel over the network.
"""

from __future__ import annotations

import uuid
from typing import Callable, Iterator

from mot.errors import UserError

#: Seconds to wait for the scheduler before giving up with a one-line error.
CONNECT_TIMEOUT = 15


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UserError('--cluster needs Dask distributed, an optional extra: pip install "siamese-mot[cluster]" '
                        '(or pip install "dask[distributed]")') from None
    return distributed


class ClusterRunner:
    """A connection to a Dask scheduler that runs tasks and hands back their outcomes as they finish.

    Args:
        address: the scheduler's address (``tcp://host:8786``, ``host:8786``).
    """

    def __init__(self, address: str):
        distributed = _distributed()
        self._distributed = distributed
        try:
            self.client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None
        self._token = uuid.uuid4().hex[:8]

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def channel(self, receive: Callable[[tuple], None]) -> "EventChannel":
        """A channel the tasks can ``put`` progress reports on; each report reaches ``receive`` here.

        Reports travel as the workers' structured events (``Worker.log_event``, the scheduler
        forwards them to subscribed clients): no client is needed on the workers.
        """
        topic = f"siamese-mot-progress-{self._token}"
        self.client.subscribe_topic(topic, lambda event: receive(tuple(event[1])))
        return EventChannel(topic)

    def map(self, fn: Callable, tasks: list[tuple], names: list[str]) -> Iterator[tuple[int, object]]:
        """Runs ``fn(*task)`` for every task on the cluster.

        Yields:
            ``(index, result)`` as tasks finish; ``result`` is the exception for a task the
            cluster could not run (a worker that died running it: ``KilledWorker``).
        """
        futures = [self.client.submit(fn, *task, key=f"siamese-mot-{name}-{self._token}", pure=False)
                   for task, name in zip(tasks, names)]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in self._distributed.as_completed(futures, loop=self.client.loop):
                try:
                    yield index[future.key], future.result()
                except (self._distributed.KilledWorker, OSError) as exc:
                    yield index[future.key], exc
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.client.close()


class EventChannel:
    """The tasks' side of :meth:`ClusterRunner.channel` (picklable: it holds only the topic)."""

    def __init__(self, topic: str):
        self.topic = topic

    def put(self, item: tuple) -> None:
        from distributed import get_worker
        get_worker().log_event(self.topic, list(item))
