"""The ``redpajama`` command: argument parsing, each subcommand, and the commands that read outputs
(report, sample, show), build the models and run the demo."""
