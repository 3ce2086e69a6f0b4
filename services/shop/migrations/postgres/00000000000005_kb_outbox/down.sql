DROP TABLE kb_outbox;
