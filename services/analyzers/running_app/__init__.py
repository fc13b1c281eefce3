"""What the analyzers of a running app (dynamic, performance) share: the HTTP client, target resolution and
reachability, the app's requirements file, the base of HTTP tools, and the replay entry point."""
