"""The PostgreSQL sink: change events on `esr.changes` -> the read model in schema `esr` (DESIGN §5).

`mapping` is the pure part (events -> typed rows), `database` the PostgreSQL part (one transaction per
batch with the consumed offsets), `sink` the Kafka consumer around them. Run it with
`python -m connectors.sink`.
"""

from connectors.sink.database import SinkDatabase, reset_offsets
from connectors.sink.sink import DEFAULT_GROUP, Sink, SinkSettings, SinkStats

__all__ = ["DEFAULT_GROUP", "Sink", "SinkDatabase", "SinkSettings", "SinkStats", "reset_offsets"]
