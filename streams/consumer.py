"""A cheaper Faust consumer loop: the same as Faust's, without two asyncio tasks per message.

Faust's `Consumer._drain_messages` hands every fetched message to the conductor with

    await self.wait_first(callback(message), self.suspend_flow.wait())

so that a rebalance (`suspend_flow`) can interrupt a callback blocked on flow control. `wait_first` wraps
both awaitables in tasks and runs `asyncio.wait` on them: about five futures and a dozen event-loop
callbacks per message, roughly a third of a bare counting agent's CPU time on these machines (measured
with `python -m bench.streams --profile`).

`FastDrainConsumer` awaits the callback directly while the flow is running, and keeps Faust's
interruptible path whenever `suspend_flow` is set. Nothing else changes. The direct await is safe because
the callback only suspends (1) on flow control, which only a rebalance suspends, and the rebalance sets
`suspend_flow` before it suspends flow control, with no await in between our check and the callback's
first await; (2) while the producer buffer is flushed (bounded); (3) on a full stream queue, which the
conductor avoids by pausing the partition at high pressure. If a rebalance does start while the callback
waits for queue space, the rebalance stops the fetcher, which cancels this loop, exactly as Faust does
with a drain loop that is waiting in `getmany`.

It is selected by the consumer broker URL scheme `esrkafka://` registered here (the producer keeps `kafka://`).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver

SCHEME = "esrkafka"


class FastDrainConsumer(aiokafka_driver.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by every worker
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = cast(Any, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if suspended():
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                await callback(message)
                            set_read_offset(tp, offset)
                    unset_flag(flag_consumer_fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


class Transport(aiokafka_driver.Transport):
    Consumer = FastDrainConsumer


drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
