-- What operators decided about each dead letter (`esr dlq replay | discard`): the dead-letter topics
-- themselves are append-only, so a resolved message stays there and is listed as resolved.
CREATE TABLE esr.dead_letter_resolution (
    stage        text NOT NULL CHECK (stage IN ('ingest', 'process', 'sink')),
    topic_id     text NOT NULL,  -- the dead-letter topic's id (a re-created topic starts over)
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('replayed', 'discarded')),
    reason       text,
    resolved_by  text NOT NULL,
    resolved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stage, topic_id, partition, "offset")
);
