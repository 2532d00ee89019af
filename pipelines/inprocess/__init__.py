"""The in-process executor: a slice's recipe run in the launcher's process without Beam, each
shuffle done in memory, its files written by the sink's rules (:mod:`redpajama.pipelines.runs.sink`)
so that they are byte for byte those of a Beam run (:class:`~redpajama.pipelines.inprocess.executor.InProcessExecutor`)."""
