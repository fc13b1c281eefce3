"""JetStream plumbing: connecting, declaring streams, the one consumer loop, settling and publishing, the embedded nats-server and its users."""
