"""A task's trace: the JSON route (from span files or a trace store) and the public trace page that shows it."""
