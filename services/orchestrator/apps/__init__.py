"""The app runner: Assay prepares, starts, forwards to and stops the apps it probes, each in a sandbox."""
