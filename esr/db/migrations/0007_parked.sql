-- Employees parked behind a dead letter at the PostgreSQL sink (esr.parking, issue 7): once one of an
-- employee's change events goes to esr.dlq.sink, the employee's later events wait behind it (dead-lettered
-- as parked) until `esr dlq replay | discard` releases it through esr.changes. A row is written in the
-- transaction of the batch that parked or released the employee, with its data and consumed offsets, so a
-- batch read again decides the same.
CREATE TABLE esr.sink_parked (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    key             text NOT NULL,  -- "<vpd>:<person_id>"
    blocker         text NOT NULL,  -- the blocking event's original location, "esr.changes[P]@O"
    releasing       boolean NOT NULL DEFAULT false,  -- a release has begun and not yet ended
    straggler       text,  -- the first event parked during the release: the blocker once it ends
    topic_id        text,  -- the topic's id the locations belong to: a re-created topic starts over
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, key)
);
