"""The Faust app: configuration for the embedded broker (and Kafka), tables, topics, agents.

Choices (DESIGN §7 for the measured broker facts):
- consumer group = app id `esr-streams`; one worker per process, any number of processes.
- `broker_session_timeout=6`, `broker_heartbeat_interval=1`: Tansu makes a join wait half the session
  timeout.
- at-least-once (no `exactly_once`: aiokafka's idempotent/transactional producer fails on Tansu); every
  output is deterministic, the sink de-duplicates by event_id.
- no topic is ever created by Faust (`topic_allow_declare=False`, no leader topic): `ensure_stream_topics`
  creates the project topics and the changelogs with the partition count of esr.records.
- the producer places keys with murmur2 (`streams.partitioner`: the same function as aiokafka's default
  partitioner and as librdkafka's `murmur2_random` for non-null keys, which the ingest job uses), so a key
  lands on the same partition whoever produces it; `tests/integration/streams` checks it on the broker.
- Tansu's wrong high watermark: instead of `producer_max_batch_size=1` (one produce batch per message, for
  every topic) the table manager corrects the high watermarks used by recovery (`streams.tables`).
- web server off; if something still starts it, it listens on 127.0.0.1 only (a running worker listens on
  no TCP port at all, checked with `ss`).
- memory tables (no RocksDB on these machines): a restart rebuilds state from the changelogs.
- consumption through `streams.consumer.FastDrainConsumer` (Faust's drain loop without two asyncio tasks per
  message); every output, table changelogs included, through one librdkafka producer (`streams.output`)
  whose deliveries are confirmed per batch before the batch's input is acked (`agents.BatchPipeline`).
- throughput knobs in `Tuning` (`ESR_STREAMS_*`), measured with `python -m bench.streams`.
- Kafka TLS / SASL from the same `ESR_KAFKA_*` variables as every librdkafka client: Faust's aiokafka
  clients get them as `broker_credentials` (`streams.security`), the output producer as they are.
- trust profiles from `esr.trust-profiles` (`streams.profiles`, a thread of every worker); Prometheus
  metrics with `ESR_METRICS_PORT` (`streams.metrics`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faust

from esr.config import Settings
from esr.kafka.config import client_config, producer_config
from esr.kafka.topics import CHANGES, CONTROL, DLQ_PROCESS, EMPLOYEES, RECORDS
from esr.runtime.broker import free_port
from streams.agents import BatchPipeline, ControlForwarder, EmployeesProcessor
from streams.consumer import SCHEME
from streams.metrics import MeteredOutput, WorkerMetrics
from streams.output import Output
from streams.parking import WorkerParking
from streams.partitioner import murmur2_partitioner
from streams.port import DomainPort, load_domain
from streams.profiles import TrustProfiles
from streams.replay import read_fence
from streams.security import faust_credentials
from streams.tables import BatchTable, table_manager_class
from streams.topics import EMPLOYEES_CHANGELOG, PARKED_CHANGELOG, REFERENCES_CHANGELOG

log = logging.getLogger(__name__)

APP_ID = "esr-streams"
#: where the worker writes its counters (JSON, 4 times a second), for the bench and the tests
STATS_FILE_ENV = "ESR_STREAMS_STATS_FILE"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class Tuning:
    """Throughput knobs (measured with `python -m bench.streams`); `ESR_STREAMS_*` overrides."""

    batch_size: int = 2000  # take_events max
    batch_within: float = 0.5  # seconds to wait for a batch to fill
    max_poll_records: int = 5000
    stream_buffer_maxsize: int = 50_000
    max_fetch_size: int = 16 * 1024 * 1024
    producer_linger: float = 0.005
    producer_max_batch_size: int = 1024 * 1024
    commit_interval: float = 2.8
    in_flight: int = 2  # batches whose outputs may still be unacknowledged while the next one is processed
    fast_drain: bool = True  # streams.consumer.FastDrainConsumer instead of Faust's own drain loop
    lag_interval: float = 15.0  # seconds between consumer-lag measurements (with ESR_METRICS_PORT)

    @classmethod
    def from_env(cls) -> Tuning:
        return cls(
            batch_size=_env_int("ESR_STREAMS_BATCH_SIZE", cls.batch_size),
            batch_within=_env_float("ESR_STREAMS_BATCH_WITHIN", cls.batch_within),
            max_poll_records=_env_int("ESR_STREAMS_MAX_POLL_RECORDS", cls.max_poll_records),
            stream_buffer_maxsize=_env_int("ESR_STREAMS_BUFFER_MAXSIZE", cls.stream_buffer_maxsize),
            max_fetch_size=_env_int("ESR_STREAMS_MAX_FETCH_SIZE", cls.max_fetch_size),
            producer_linger=_env_float("ESR_STREAMS_PRODUCER_LINGER", cls.producer_linger),
            producer_max_batch_size=_env_int("ESR_STREAMS_PRODUCER_MAX_BATCH_SIZE", cls.producer_max_batch_size),
            commit_interval=_env_float("ESR_STREAMS_COMMIT_INTERVAL", cls.commit_interval),
            in_flight=_env_int("ESR_STREAMS_IN_FLIGHT", cls.in_flight),
            fast_drain=os.environ.get("ESR_STREAMS_FAST_DRAIN", "1") != "0",
            lag_interval=_env_float("ESR_STREAMS_LAG_INTERVAL", cls.lag_interval),
        )


def broker_urls(bootstrap_servers: str, scheme: str = "kafka") -> list[str]:
    return [f"{scheme}://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()]


def faust_settings(settings: Settings, bootstrap_servers: str, *, worker_id: str, tuning: Tuning,
                   fast_drain: bool = True) -> dict[str, Any]:
    """The Faust configuration shared by the worker and the bench's counting agent.

    `fast_drain`: consume with `streams.consumer.FastDrainConsumer` (Faust's loop minus two tasks per message).
    TLS / SASL: the `ESR_KAFKA_*` security properties as Faust credentials (`streams.security`).
    """
    credentials = faust_credentials(settings.kafka_overrides)
    datadir = settings.data_dir / "streams" / worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    return {
        "broker": broker_urls(bootstrap_servers),
        "broker_consumer": broker_urls(bootstrap_servers, SCHEME if fast_drain else "kafka"),
        "datadir": str(datadir),
        "store": "memory://",
        "autodiscover": False,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": 6.0,
        "broker_heartbeat_interval": 1.0,
        "broker_commit_interval": tuning.commit_interval,
        "broker_max_poll_records": tuning.max_poll_records,
        "stream_buffer_maxsize": tuning.stream_buffer_maxsize,
        "consumer_max_fetch_size": tuning.max_fetch_size,
        "consumer_auto_offset_reset": "earliest",
        "producer_partitioner": murmur2_partitioner,
        "producer_linger": tuning.producer_linger,
        "producer_max_batch_size": tuning.producer_max_batch_size,
        "producer_acks": -1,
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "web_enabled": False,
        "web_bind": "127.0.0.1",
        "web_port": free_port(),
        "web_host": "127.0.0.1",
        "table_standby_replicas": 1,
        "worker_redirect_stdouts": False,
        "TableManager": table_manager_class(client_config(settings, bootstrap_servers)),
        **({} if credentials is None else {"broker_credentials": credentials}),
    }


def output_config(settings: Settings, bootstrap_servers: str, worker_id: str) -> dict[str, Any]:
    """librdkafka config of the worker's output producer: the ingest job's (idempotent, murmur2_random, lz4),
    with a short linger: each batch's outputs are flushed before the batch is acknowledged."""
    return {**producer_config(settings, bootstrap_servers), "linger.ms": 5, "client.id": f"{APP_ID}-{worker_id}"}


@dataclass
class StreamsApp:
    """The app and the parts tests and the bench look at."""

    app: faust.App
    processor: EmployeesProcessor
    control: ControlForwarder
    employees: BatchTable
    references: BatchTable
    tuning: Tuning


OnFatal = Callable[[BaseException], None]


def _exit_now(exc: BaseException) -> None:
    # Faust acks a take_events batch in a `finally`, even when the agent raised, and a later commit would
    # then skip records that were never processed. Leaving at once keeps the batch uncommitted.
    log.critical("stream processing failed; exiting without committing the batch: %r", exc, exc_info=exc)
    logging.shutdown()
    os._exit(70)


def build(
    settings: Settings,
    bootstrap_servers: str,
    *,
    worker_id: str = "worker-1",
    domain: DomainPort | None = None,
    tuning: Tuning | None = None,
    app_id: str = APP_ID,
    on_fatal: OnFatal = _exit_now,
) -> StreamsApp:
    tuning = tuning or Tuning.from_env()
    domain = domain or load_domain()
    partitions = settings.partitions
    app = faust.App(app_id, **faust_settings(settings, bootstrap_servers, worker_id=worker_id, tuning=tuning,
                                             fast_drain=tuning.fast_drain))

    def topic(name: str, **kwargs: Any) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         partitions=partitions, **kwargs)

    records_topic = topic(RECORDS)
    control_topic = app.topic(CONTROL, key_type=bytes, value_type=bytes, key_serializer="raw",
                              value_serializer="raw", partitions=1)

    def changelog(name: str) -> Any:
        return topic(name, compacting=True, acks=False, internal=True, maxsize=131_072, allow_empty=True)

    def table(name: str, changelog_name: str) -> BatchTable:
        created = BatchTable(app, name=name, key_type=bytes, value_type=bytes, partitions=partitions,
                             changelog_topic=changelog(changelog_name))
        app.tables.add(created)
        return created

    metered = MeteredOutput(output_config(settings, bootstrap_servers, worker_id)) if settings.metrics_port else None
    output = metered or Output(output_config(settings, bootstrap_servers, worker_id))
    employees = table("employees", EMPLOYEES_CHANGELOG)
    references = table("references", REFERENCES_CHANGELOG)
    parked = table("parked", PARKED_CHANGELOG)
    employees.output = references.output = parked.output = output

    profiles = TrustProfiles(client_config(settings, bootstrap_servers))  # esr.trust-profiles, read by a thread
    processor = EmployeesProcessor(domain, employees, references, output, partitions,
                                   absence_is_delete=profiles.absence_is_delete)
    processor.parking = WorkerParking(parked)  # keys waiting behind a dead letter (esr.parking)

    def forget_places(_app: Any, /, *_partitions: Any, signal: Any, **_kwargs: Any) -> None:  # noqa: ARG001
        # recovery and standby replicas write the table behind the agent's back (streams.places)
        processor.forget_partitions()

    app.on_partitions_revoked.connect(forget_places)
    app.on_partitions_assigned.connect(forget_places)
    processor.fence = read_fence(client_config(settings, bootstrap_servers), app_id)  # `esr replay`'s plan
    control = ControlForwarder(output, partitions)
    pipeline = BatchPipeline(processor, depth=tuning.in_flight, on_fatal=on_fatal)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_trust_profiles() -> None:
        profiles.start()

    @app.agent(records_topic, name="employees")
    async def employees_agent(stream: Any) -> None:
        await profiles.ready()
        async for events in stream.take_events(tuning.batch_size, tuning.batch_within):
            try:
                await pipeline.run_batch(events)
            except Exception as exc:
                on_fatal(exc)
                raise

    @app.agent(control_topic, name="control")
    async def control_agent(stream: Any) -> None:
        async for event in stream.events():
            try:
                await control.process(event)
            except Exception as exc:
                on_fatal(exc)
                raise

    stats_file = os.environ.get(STATS_FILE_ENV)
    if stats_file:
        path = Path(stats_file)

        @app.timer(interval=0.25)  # type: ignore[untyped-decorator]
        async def write_stats() -> None:
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(asdict(processor.stats)))
            partial.replace(path)

    if metered is not None:  # served by `streams.worker.run_worker`
        metrics = WorkerMetrics(processor, metered, client_config(settings, bootstrap_servers), group=app_id,
                                partitions=partitions)

        @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
        async def collect_metrics() -> None:
            metrics.collect()

        @app.timer(interval=tuning.lag_interval)  # type: ignore[untyped-decorator]
        async def measure_lag() -> None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, metrics.measure_lag)
            except Exception as exc:  # a broker hiccup must not stop the worker; the gauge keeps its value
                log.warning("consumer lag not measured: %s", exc)

    # topics the agents write, declared so Faust knows them (never created by Faust)
    for name in (CHANGES, EMPLOYEES, DLQ_PROCESS):
        topic(name)
    return StreamsApp(app, processor, control, employees, references, tuning)


def create_app(settings: Settings, bootstrap_servers: str, *, worker_id: str = "worker-1",
               domain: DomainPort | None = None, tuning: Tuning | None = None) -> faust.App:
    """The stream processor's Faust app, ready for `faust.Worker(app).execute_from_commandline()`."""
    return build(settings, bootstrap_servers, worker_id=worker_id, domain=domain, tuning=tuning).app
