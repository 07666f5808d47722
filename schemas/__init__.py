"""Committed Avro schemas: `<subject>/v<N>.avsc`, one self-contained file per version.

Generated from `esr.format.layouts` by `python -m esr.codec write`; never edited by hand, never
rewritten once released (old versions are needed to decode old messages by fingerprint).
"""

from pathlib import Path

SCHEMA_DIR: Path = Path(__file__).parent
