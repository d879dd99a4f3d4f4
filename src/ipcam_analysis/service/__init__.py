"""The running service: `app` wires the sources, the queue, the analysis and the dashboard and
owns start and stop; `intake` turns what a source received into queued rows; `analysis` runs
the worker pool (`worker_pool`) over the pipeline (`pipeline`) in this process, `processes` in
child processes; `decisions` holds the rules that need a camera's history."""
