"""The paper's four tables (main, noise, ablations, data efficiency), re-measured: `actjepa bench
paper`. plan.py says which cells exist, runner.py trains and evaluates them (resumable, one JSON
line per finished cell), report.py turns the JSON lines into tables and plots, published.py holds
the paper's own numbers."""
