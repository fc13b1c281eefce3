"""What every part stands on: settings, the exception root, logs, subprocesses and their groups, redaction, the target policy."""
