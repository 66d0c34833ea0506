"""What every `actjepa` subcommand shares: its exit codes."""
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_SKIPPED = 3  # convert: written, but some bag or episode was skipped (see the summary)
