"""The wire contract: the messages on NATS, the analyzer protocol's frames, subject names, what names a task, request options, the contracts generated from them."""
