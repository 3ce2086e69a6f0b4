DROP TABLE telnyx_events;
